package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workbench"
)

type generateOptions struct {
	policy    []string
	input     []string
	output    string
	config    string
	format    string
	namespace string
	now       string
}

// generateReport is `attest policy generate-tests --format json`.
type generateReport struct {
	Files []generatedFile `json:"files"`
}

type generatedFile struct {
	Policy string `json:"policy"`
	File   string `json:"file"`
	Tests  int    `json:"tests"`
	Passed int    `json:"passed"`
}

func newGenerateTestsCommand() *cobra.Command {
	o := generateOptions{}
	cmd := &cobra.Command{
		Use:   "generate-tests --policy P --input MANIFESTS --output T_test.rego",
		Short: "Write snapshot _test.rego cases of what a policy reports today for example manifests",
		Long: "Evaluates each object of --input (a CREATE, as `attest policy check` reads it) through the webhook's\n" +
			"pipeline and writes one Rego test per object asserting the exact value of the policy's violation, deny\n" +
			"and warn rules for the input document the pipeline built: today's verdicts and messages, for a reviewer\n" +
			"to read and for `attest policy test` to hold the policy to. --policy is a .rego file or directory (one\n" +
			"file per policy is written when it holds several: --output is then a directory) or a library policy's\n" +
			"name. The tests are run once written: exit 0 when they pass, 1 when one does not, 2 on bad input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGenerateTests(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.policy, "policy", nil, "the policy: .rego file, directory, or a library policy's name (repeatable)")
	f.StringSliceVarP(&o.input, "input", "f", nil, "example manifests: file, directory or - for stdin (repeatable)")
	f.StringVarP(&o.output, "output", "o", "", "the _test.rego file to write (a directory when several policies are given)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: the project's .attest/ files over ~/.config/attest/policies.yaml)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now; set it for tests that do not change)")
	return cmd
}

func runGenerateTests(cmd *cobra.Command, o generateOptions) error {
	if len(o.policy) == 0 || len(o.input) == 0 || o.output == "" {
		return usageError(fmt.Errorf("--policy, --input and --output are required"))
	}
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	ctx := cmd.Context()
	lib, _, err := policies.Library()
	if err != nil {
		return err
	}
	own, names, library, err := generatePolicies(ctx, o.policy, lib)
	if err != nil {
		return usageError(err)
	}
	records, err := manifestRecords(cmd, workbenchOptions{input: o.input, namespace: o.namespace, now: o.now})
	if err != nil {
		return err
	}
	if len(records) == 0 {
		return usageError(fmt.Errorf("--input: no object to test in %s", strings.Join(o.input, ", ")))
	}
	wb, err := workbench.New(ctx, workbench.Options{
		Sources: append(append([]policies.Source(nil), lib...), own...),
		Config:  func(e *policies.Engine) (*config.Config, error) { return loadConfig(ctx, o.config, e) },
	})
	if err != nil {
		return usageError(err)
	}
	dirMode := len(names) > 1
	if info, err := os.Stat(o.output); err == nil && info.IsDir() {
		dirMode = true
	}
	report := generateReport{Files: []generatedFile{}}
	failed := 0
	for _, name := range names {
		file := o.output
		if dirMode {
			if err := os.MkdirAll(o.output, 0o755); err != nil {
				return usageError(fmt.Errorf("--output: %w", err))
			}
			file = filepath.Join(o.output, name+"_snapshot_test.rego")
		}
		header := fmt.Sprintf("Snapshot tests of policy %s, written by `attest policy generate-tests` from %s.\n"+
			"Each asserts what the policy reports today for one object; regenerate them when a change is intended.", name, strings.Join(o.input, ", "))
		text, err := wb.Snapshot(ctx, name, records, header)
		if err != nil {
			return usageError(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			return usageError(fmt.Errorf("--output: %w", err))
		}
		pols := own
		if library[name] {
			pols = lib
		}
		results, err := policies.RunTests(ctx, pols, []policies.Source{{Name: file, Text: text}})
		if err != nil {
			return fmt.Errorf("run the tests written to %s: %w", file, err)
		}
		g := generatedFile{Policy: name, File: file, Tests: len(results)}
		for _, r := range results {
			if r.Pass {
				g.Passed++
			} else {
				failed++
			}
		}
		report.Files = append(report.Files, g)
	}
	if err := emit(cmd, "", func(w io.Writer) error { return writeGenerate(w, o.format, report) }); err != nil {
		return err
	}
	if failed > 0 {
		return failure(fmt.Errorf("%d written tests fail: the policy does not decide the same way twice (does it read something outside its input?)", failed))
	}
	return nil
}

// generatePolicies reads --policy: paths of .rego files and directories, or library policy names. It returns the
// user's sources, the names of the policies to snapshot, and which of them are the library's.
func generatePolicies(ctx context.Context, args []string, lib []policies.Source) (own []policies.Source, names []string, library map[string]bool, err error) {
	library = map[string]bool{}
	var paths []string
	var libEngine *policies.Engine
	for _, a := range args {
		if _, statErr := os.Stat(a); statErr == nil {
			paths = append(paths, a)
			continue
		} else if !errors.Is(statErr, os.ErrNotExist) {
			return nil, nil, nil, fmt.Errorf("--policy: %w", statErr)
		}
		if libEngine == nil {
			if libEngine, err = policies.Compile(ctx, lib); err != nil {
				return nil, nil, nil, err
			}
		}
		if _, ok := libEngine.Lookup(a); !ok {
			return nil, nil, nil, fmt.Errorf("--policy: %s is neither a file nor a library policy (see `attest policy list`)", a)
		}
		names, library[a] = append(names, a), true
	}
	if len(paths) > 0 {
		if own, _, err = readRegoPaths(paths); err != nil {
			return nil, nil, nil, fmt.Errorf("--policy: %w", err)
		}
		e, err := policies.Compile(ctx, own)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--policy: %w", err)
		}
		if len(e.Policies()) == 0 {
			return nil, nil, nil, fmt.Errorf("--policy: no policy (a .rego file with METADATA) in %s", strings.Join(paths, ", "))
		}
		for _, p := range e.Policies() {
			names = append(names, p.Name)
		}
	}
	return own, names, library, nil
}

func writeGenerate(w io.Writer, format string, r generateReport) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "%s: %d tests of %s, %d pass\n", f.File, f.Tests, f.Policy, f.Passed)
	}
	return nil
}
