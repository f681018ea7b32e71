package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/analysis"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
)

type lintOptions struct {
	withLibrary bool
	format      string
	// optimize: --suggestions, the manifests to profile on, and the configuration they are evaluated with.
	suggestions bool
	files       []string
	config      string
	namespace   string
}

// lintReport is `attest policy lint --format json` and `attest policy optimize --format json`.
type lintReport struct {
	Findings []lintFinding `json:"findings"`
}

type lintFinding struct {
	analysis.Finding
	// Profile is the policy's evaluation time over the manifests of `optimize -f` (absent for lint).
	Profile *policyProfile `json:"profile,omitempty"`
}

func newLintCommand() *cobra.Command {
	o := lintOptions{}
	cmd := &cobra.Command{
		Use:   "lint [PATH...]",
		Short: "Check Rego policies for what a reviewer would ask: METADATA, fixes in messages, work before conditions",
		Long: "Reads .rego policies (default: the embedded library) and reports, at file:line: missing-metadata,\n" +
			"missing-description, message-without-fix (a denying rule whose message names no fix while the policy has\n" +
			"no remediation) and work-before-conditions (a rule building its message before a condition that decides\n" +
			"whether it fires). Regal is not used: it is not on the Go module proxy this project builds from. Exit 1\n" +
			"when something is found, 0 when not, 2 when a file cannot be read or parsed.",
		RunE: func(cmd *cobra.Command, args []string) error { return runLint(cmd, o, args) },
	}
	cmd.Flags().BoolVar(&o.withLibrary, "with-library", false, "lint the embedded library too")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func newOptimizeCommand() *cobra.Command {
	o := lintOptions{}
	cmd := &cobra.Command{
		Use:   "optimize [PATH...] --suggestions [-f MANIFESTS]",
		Short: "Suggest what makes policies cheaper on the hot path, with each policy's measured evaluation time",
		Long: "The lint findings that cost time on every admission (work-before-conditions), each beside the policy's\n" +
			"evaluation time measured as `attest policy profile` does over the manifests of -f (mean and p99). It only\n" +
			"suggests: no policy is rewritten. Exit 1 when there is a suggestion, 0 when not, 2 on bad input.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !o.suggestions {
				return usageError(fmt.Errorf("optimize only suggests: pass --suggestions"))
			}
			return runLint(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.suggestions, "suggestions", false, "list the suggestions (required: nothing is rewritten)")
	f.BoolVar(&o.withLibrary, "with-library", false, "include the embedded library")
	f.StringSliceVarP(&o.files, "filename", "f", nil, "manifests to measure the policies on (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml for the measurement")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func runLint(cmd *cobra.Command, o lintOptions, paths []string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	lib, _, err := policies.Library()
	if err != nil {
		return err
	}
	var srcs []policies.Source
	if len(paths) == 0 || o.withLibrary {
		srcs = append(srcs, lib...)
	}
	if len(paths) > 0 {
		own, _, err := readRegoPaths(regoPaths(paths))
		if err != nil {
			return usageError(err)
		}
		srcs = append(srcs, own...)
	}
	found, err := analysis.Lint(srcs)
	if err != nil {
		return usageError(err)
	}
	report := lintReport{Findings: []lintFinding{}}
	var times map[string]policyProfile
	if len(o.files) > 0 {
		if times, err = measure(cmd, o, lib, srcs); err != nil {
			return err
		}
	}
	for _, f := range found {
		if o.suggestions && !f.HotPath {
			continue
		}
		lf := lintFinding{Finding: f}
		if p, ok := times[f.Policy]; ok {
			lf.Profile = &p
		}
		report.Findings = append(report.Findings, lf)
	}
	if err := emit(cmd, "", func(w io.Writer) error { return writeLint(w, o.format, report) }); err != nil {
		return err
	}
	if len(report.Findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// measure evaluates every object of the manifests through the pipeline, memo off, and returns each policy's
// times as `attest policy profile` reports them.
func measure(cmd *cobra.Command, o lintOptions, lib, srcs []policies.Source) (map[string]policyProfile, error) {
	ctx := cmd.Context()
	all := srcs
	if !o.withLibrary {
		all = append(append([]policies.Source(nil), lib...), srcs...)
	}
	engine, err := policies.Compile(ctx, all)
	if err != nil {
		return nil, usageError(err)
	}
	engine.SetMemo(false)
	cfg, err := loadConfig(ctx, o.config, engine)
	if err != nil {
		return nil, usageError(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }})
	if err != nil {
		return nil, err
	}
	sources, err := manifest.Collect(o.files, cmd.InOrStdin())
	if err != nil {
		return nil, usageError(err)
	}
	now := time.Now()
	samples := map[string][]time.Duration{}
	err = eachObject(sources, func(obj manifest.Object) error {
		d := eval.Evaluate(ctx, admission.ObjectInput(obj.Object, o.namespace, now))
		for _, r := range d.Results {
			samples[r.Policy] = append(samples[r.Policy], r.Duration)
		}
		return nil
	})
	if err != nil {
		return nil, usageError(err)
	}
	out := map[string]policyProfile{}
	for _, p := range profiles(samples) {
		out[p.Policy] = p
	}
	return out, nil
}

func writeLint(w io.Writer, format string, r lintReport) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "nothing found")
		return nil
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%s:%d: %s [%s] %s", f.File, f.Line, f.Check, f.Policy, f.Message)
		if f.Profile != nil {
			fmt.Fprintf(w, " (measured: %d evaluations, mean %s, p99 %s)", f.Profile.Evaluations,
				roundDuration(time.Duration(f.Profile.MeanNs)), roundDuration(time.Duration(f.Profile.P99Ns)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%s\n", plural(len(r.Findings), "finding"))
	return nil
}
