package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/analysis"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
)

type conflictsOptions struct {
	policy   []string
	files    []string
	config   string
	detailed bool
	format   string
}

// conflictsReport is `attest policy conflicts --format json`.
type conflictsReport struct {
	Conflicts []analysis.Conflict `json:"conflicts"`
}

func newConflictsCommand() *cobra.Command {
	o := conflictsOptions{}
	cmd := &cobra.Command{
		Use:   "conflicts [--policy DIR] [--config F] [-f POLICYCONFIGS] [--detailed]",
		Short: "Find policies that can never all pass and configuration that contradicts itself",
		Long: "Reads the library, your policies (--policy) and the configuration, and reports:\n" +
			"  bounds        enabled policies whose denying rules leave no value of a numeric input path that passes\n" +
			"                (one requires spec.replicas >= 3, another <= 2), parameters as configured;\n" +
			"  policyconfig  PolicyConfig resources (from -f files) setting one scalar parameter differently.\n" +
			"A rule is read when one comparison of an input path with a number or a parameter decides it; its other\n" +
			"conditions (kinds, namespaces) are not weighed. Exit 1 when a conflict is found, 0 when none, 2 on bad input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConflicts(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.policy, "policy", nil, "your policies: .rego files or directories, read with the library (repeatable)")
	f.StringSliceVarP(&o.files, "filename", "f", nil, "files or directories holding PolicyConfig resources (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: the project's .attest/ files over ~/.config/attest/policies.yaml)")
	f.BoolVar(&o.detailed, "detailed", false, "name each side of a conflict with its file:line")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func runConflicts(cmd *cobra.Command, o conflictsOptions) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	ctx := cmd.Context()
	lib, _, err := policies.Library()
	if err != nil {
		return err
	}
	srcs := lib
	if len(o.policy) > 0 {
		own, _, err := readRegoPaths(o.policy)
		if err != nil {
			return usageError(fmt.Errorf("--policy: %w", err))
		}
		srcs = append(append([]policies.Source(nil), lib...), own...)
	}
	engine, err := policies.Compile(ctx, srcs)
	if err != nil {
		return usageError(err)
	}
	cfg, err := loadConfig(ctx, o.config, engine)
	if err != nil {
		return usageError(err)
	}
	found, err := analysis.Bounds(engine, srcs, cfg)
	if err != nil {
		return usageError(err)
	}
	pcs, err := readPolicyConfigs(cmd, o.files)
	if err != nil {
		return usageError(err)
	}
	found = append(found, analysis.PolicyConfigs(ctx, srcs, cfg, pcs)...)
	report := conflictsReport{Conflicts: found}
	if report.Conflicts == nil {
		report.Conflicts = []analysis.Conflict{}
	}
	if err := emit(cmd, "", func(w io.Writer) error { return writeConflicts(w, o, report) }); err != nil {
		return err
	}
	if len(found) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// readPolicyConfigs reads the PolicyConfig resources of the files; other objects are ignored.
func readPolicyConfigs(cmd *cobra.Command, paths []string) ([]v1alpha1.PolicyConfig, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	sources, err := manifest.Collect(paths, cmd.InOrStdin())
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.PolicyConfig
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil {
				return nil, err
			}
			objs, err := doc.Objects()
			if err != nil {
				return nil, err
			}
			for _, obj := range objs {
				if obj.Object["kind"] != "PolicyConfig" || obj.Object["apiVersion"] != v1alpha1.GroupVersion.String() {
					continue
				}
				raw, _ := json.Marshal(obj.Object)
				var pc v1alpha1.PolicyConfig
				if err := json.Unmarshal(raw, &pc); err != nil {
					return nil, fmt.Errorf("%s:%d: PolicyConfig: %w", obj.File, obj.Line, err)
				}
				if pc.Name == "" || pc.Spec.Policy == "" {
					return nil, fmt.Errorf("%s:%d: PolicyConfig: metadata.name and spec.policy are required", obj.File, obj.Line)
				}
				out = append(out, pc)
			}
		}
	}
	return out, nil
}

func writeConflicts(w io.Writer, o conflictsOptions, r conflictsReport) error {
	if o.format == "json" {
		return writeJSON(w, r)
	}
	if len(r.Conflicts) == 0 {
		fmt.Fprintln(w, "no conflicts found")
		return nil
	}
	for _, c := range r.Conflicts {
		fmt.Fprintf(w, "%s: %s\n", c.Kind, c.Message)
		if o.detailed {
			for _, d := range c.Details {
				fmt.Fprintf(w, "  %s\n", d)
			}
		}
	}
	fmt.Fprintf(w, "%s found\n", plural(len(r.Conflicts), "conflict"))
	return nil
}
