//go:build !lean

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/policies/gatekeeper/verify"
)

type suiteOptions struct {
	run     string
	verbose bool
	cel     bool
}

func newVerifyCommand(a app) *cobra.Command {
	o := suiteOptions{}
	cmd := &cobra.Command{
		Use:   "verify PATH...",
		Short: fullShort["verify"],
		Long: "Runs Gatekeeper's test.gatekeeper.sh/v1alpha1 Suite files unmodified: each test's ConstraintTemplate\n" +
			"(Rego or K8sNativeValidation) and Constraint, then each case's object (or AdmissionReview) with its\n" +
			"inventory, checking the assertions on violations (yes, no or a count) and messages. PATH is a Suite file,\n" +
			"a directory (its files) or DIR/... (everything below it). Prints ok or FAIL per suite, and the reasons of\n" +
			"failures, as gator verify does. Exits 0 when every test passes, 1 when one fails, 2 when a path cannot be read.",
		Example: "  attest policy verify policies/gatekeeper/testdata/...\n" +
			"  attest policy verify suite.yaml --run 'required-labels//missing'",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, a, o, args) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.run, "run", "r", "", `regular expression selecting tests and cases by name: "TEST//CASE", or one expression for either`)
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print every test and case, and the output of Rego print()")
	f.BoolVar(&o.cel, "enable-k8s-native-validation", true, "run K8sNativeValidation (CEL) sources; false runs the Rego of templates that have both, as gator's flag")
	return cmd
}

func runVerify(cmd *cobra.Command, a app, o suiteOptions, paths []string) error {
	filter, err := verify.NewFilter(o.run)
	if err != nil {
		return usageError(err)
	}
	var suites []*verify.Suite
	for _, p := range paths {
		name, recursive := strings.CutSuffix(p, "...")
		recursive = recursive && (name == "" || strings.HasSuffix(name, "/"))
		if !recursive {
			name = p
		}
		abs, err := filepath.Abs(name)
		if err != nil {
			return usageError(err)
		}
		if _, err := os.Stat(abs); err != nil {
			return usageError(err)
		}
		s, err := verify.ReadSuites(os.DirFS("/"), strings.TrimPrefix(filepath.ToSlash(abs), "/"), name, recursive)
		if err != nil {
			return usageError(fmt.Errorf("listing test files in %s: %w", p, err))
		}
		suites = append(suites, s...)
	}
	if len(suites) == 0 {
		return usageError(errors.New("no test suites (test.gatekeeper.sh Suite files) in " + strings.Join(paths, ", ")))
	}
	runner := &verify.Runner{FS: os.DirFS("/"), Root: "/", Filter: filter, Clock: a.clock, Print: o.verbose, NoCEL: !o.cel}
	results := make([]verify.SuiteResult, 0, len(suites))
	for _, s := range suites {
		results = append(results, runner.Run(cmd.Context(), s))
	}
	failed, err := verify.Print(cmd.OutOrStdout(), results, o.verbose)
	if err != nil {
		return err
	}
	if failed {
		return failure(nil)
	}
	return nil
}
