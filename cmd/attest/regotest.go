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
	return cmd
}

func runTest(cmd *cobra.Command, o testOptions, paths []string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	var pols, tests []policies.Source
	var err error
	if len(paths) == 0 {
		pols, tests, err = policies.Library()
	} else {
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
