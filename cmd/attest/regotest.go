package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/policies"
)

type testOptions struct {
	format string
	output string
	// withLibrary compiles the embedded library's policies with PATH's (tests of library policies, such as the
	// snapshot tests the workbench and generate-tests write).
	withLibrary bool
	// all runs the library's tests with PATH's (test-all); resource checks policy NAME on manifests (test NAME
	// --resource F, the documents' form of `policy check --policy NAME -f F`).
	all      bool
	resource []string
	crds     []string
}

// testReport is `attest policy test --format json`.
type testReport struct {
	Passed int          `json:"passed"`
	Failed int          `json:"failed"`
	Tests  []testResult `json:"tests"`
}

type testResult struct {
	Test  string `json:"test"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	Pass  bool   `json:"pass"`
	Error string `json:"error,omitempty"`
}

func newTestCommand() *cobra.Command {
	o := testOptions{}
	cmd := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run Rego unit tests (*_test.rego) like `opa test`, and Cedar test cases (*_test.yaml)",
		Long: "Runs the test_ rules of *_test.rego files against the policies beside them, under the same pure\n" +
			"capabilities the webhook compiles policies with. Without PATH, runs the embedded library's tests; with\n" +
			"PATH (directories, recursively, or .rego files), runs the tests found there against the policies found\n" +
			"there, and the Cedar test files found there (*_test.yaml: `policies:` naming .cedar files and `cases:` of\n" +
			"request and expected decision, see examples/cedar). Exits 0 when every test passes, 1 when one fails, 2 when the Rego does not compile or no test is found.",
		RunE: func(cmd *cobra.Command, args []string) error { return runTest(cmd, o, args) },
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	f.BoolVar(&o.withLibrary, "with-library", false, "compile the embedded library's policies with those of PATH (to test library policies from PATH)")
	f.StringSliceVar(&o.resource, "resource", nil, "test NAME --resource F: check policy NAME on the manifests F, as `policy check --policy NAME -f F` (repeatable)")
	addCRDsFlag(f, &o.crds)
	return cmd
}

// newTestAllCommand is the documents' `attest policy test-all`: the library's tests and PATH's, together.
func newTestAllCommand() *cobra.Command {
	o := testOptions{all: true}
	cmd := &cobra.Command{
		Use:   "test-all [PATH...]",
		Short: "Run the embedded library's Rego tests and those of PATH, compiled together",
		RunE:  func(cmd *cobra.Command, args []string) error { return runTest(cmd, o, args) },
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	return cmd
}

// testResource runs `policy check --policy NAME -f F...`: the documents' `attest policy test NAME --resource F`.
func testResource(cmd *cobra.Command, o testOptions, args []string) error {
	if len(args) != 1 {
		return usageError(fmt.Errorf("--resource tests one policy: attest policy test NAME --resource FILE"))
	}
	check := newCheckCommand()
	checkArgs := []string{"--policy", args[0], "--format", o.format}
	for _, r := range o.resource {
		checkArgs = append(checkArgs, "-f", r)
	}
	if o.output != "" {
		checkArgs = append(checkArgs, "--output", o.output)
	}
	check.SetArgs(checkArgs)
	check.SetIn(cmd.InOrStdin())
	check.SetOut(cmd.OutOrStdout())
	check.SetErr(cmd.ErrOrStderr())
	check.SilenceUsage, check.SilenceErrors = true, true
	check.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	return check.ExecuteContext(cmd.Context())
}

func runTest(cmd *cobra.Command, o testOptions, paths []string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	if len(o.resource) > 0 {
		return testResource(cmd, o, paths)
	}
	var pols, tests []policies.Source
	var err error
	switch {
	case o.all:
		var own, ownTests []policies.Source
		if pols, tests, err = policies.Library(); err == nil && len(paths) > 0 {
			if own, ownTests, err = readRegoPaths(regoPaths(paths)); err == nil {
				pols, tests = append(pols, own...), append(tests, ownTests...)
			}
		}
	case len(paths) == 0:
		pols, tests, err = policies.Library()
	default:
		pols, tests, err = readRegoPaths(regoPaths(paths))
		if err == nil && o.withLibrary {
			var lib []policies.Source
			if lib, _, err = policies.Library(); err == nil {
				pols = append(lib, pols...)
			}
		}
	}
	if err != nil {
		return usageError(err)
	}
	cedarFiles, err := cedarTestFiles(paths)
	if err != nil {
		return usageError(err)
	}
	if len(o.crds) > 0 {
		crds, err := readCRDFiles(o.crds)
		if err != nil {
			return usageError(err)
		}
		if err := useCRDs(cmd.ErrOrStderr(), crds); err != nil {
			return err
		}
	}
	if len(tests) == 0 && len(cedarFiles) == 0 {
		return usageError(fmt.Errorf("no Rego tests (*_test.rego) or Cedar test files (*_test.yaml) found in %s", strings.Join(paths, ", ")))
	}
	var results []policies.TestResult
	if len(tests) > 0 {
		if results, err = policies.RunTests(cmd.Context(), pols, tests); err != nil {
			return usageError(err)
		}
		if len(results) == 0 {
			return usageError(fmt.Errorf("the *_test.rego files define no test_ rules"))
		}
	}
	cedarResults, err := runCedarTests(cedarFiles)
	if err != nil {
		return usageError(err)
	}
	sort.SliceStable(results, func(i, j int) bool {
		if results[i].File != results[j].File {
			return results[i].File < results[j].File
		}
		return results[i].Row < results[j].Row
	})
	report := testReport{Tests: make([]testResult, 0, len(results))}
	for _, r := range results {
		tr := testResult{Test: r.Package + "." + r.Name, File: r.File, Line: r.Row, Pass: r.Pass}
		if r.Err != nil {
			tr.Error = r.Err.Error()
		}
		if r.Pass {
			report.Passed++
		} else {
			report.Failed++
		}
		report.Tests = append(report.Tests, tr)
	}
	for _, tr := range cedarResults {
		if tr.Pass {
			report.Passed++
		} else {
			report.Failed++
		}
		report.Tests = append(report.Tests, tr)
	}
	err = emit(cmd, o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, report)
		}
		return writeTestText(w, report)
	})
	if err != nil {
		return err
	}
	if report.Failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func writeTestText(w io.Writer, r testReport) error {
	for _, t := range r.Tests {
		verdict := "PASS"
		if !t.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s %s (%s:%d)", verdict, t.Test, t.File, t.Line)
		if t.Error != "" {
			fmt.Fprintf(w, ": %s", t.Error)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, strings.Repeat("-", 80))
	total := r.Passed + r.Failed
	fmt.Fprintf(w, "PASS: %d/%d\n", r.Passed, total)
	if r.Failed > 0 {
		fmt.Fprintf(w, "FAIL: %d/%d\n", r.Failed, total)
	}
	return nil
}

// readRegoPaths reads policies and tests from files and directories (recursively); each source is named by its
// path as given, so messages point at the user's file.
func readRegoPaths(paths []string) (pols, tests []policies.Source, err error) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !info.IsDir() {
			if filepath.Ext(p) != ".rego" {
				return nil, nil, fmt.Errorf("%s: not a .rego file", p)
			}
			text, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			src := policies.Source{Name: p, Text: string(text)}
			if strings.HasSuffix(p, "_test.rego") {
				tests = append(tests, src)
			} else {
				pols = append(pols, src)
			}
			continue
		}
		ps, ts, err := policies.ReadSources(os.DirFS(p), ".")
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", p, err)
		}
		for _, list := range [][]policies.Source{ps, ts} {
			for i := range list {
				list[i].Name = filepath.Join(p, list[i].Name)
			}
		}
		pols, tests = append(pols, ps...), append(tests, ts...)
	}
	return pols, tests, nil
}
