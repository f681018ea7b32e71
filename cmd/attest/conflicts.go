package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/analysis"
	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
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
		Use:   "conflicts [--policy DIR] [--config F] [-f POLICYCONFIGS_AND_MANIFESTS] [--detailed]",
		Short: "Find policies that can never all pass and configuration that contradicts itself",
		Long: "Reads the library, your policies (--policy) and the configuration, and reports:\n" +
			"  bounds        enabled policies whose denying rules leave no value of a numeric input path that passes\n" +
			"                (one requires spec.replicas >= 3, another <= 2), parameters as configured;\n" +
			"  policyconfig  PolicyConfig resources (from -f files) setting one scalar parameter differently;\n" +
			"  patch         two mutate: true policies writing one path of an object of the -f manifests;\n" +
			"  duplicate     a --policy policy reporting exactly where a library policy does on the -f manifests.\n" +
			"A rule is read when one comparison of an input path with a number or a parameter decides it; its other\n" +
			"conditions (kinds, namespaces) are not weighed. Exit 1 when a conflict is found, 0 when none, 2 on bad input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConflicts(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.policy, "policy", nil, "your policies: .rego files or directories, read with the library (repeatable)")
	f.StringSliceVarP(&o.files, "filename", "f", nil, "files or directories holding PolicyConfig resources and example manifests (repeatable)")
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
	pcs, examples, err := readConflictInputs(cmd, o.files)
	if err != nil {
		return usageError(err)
	}
	found = append(found, analysis.PolicyConfigs(ctx, srcs, cfg, pcs)...)
	if len(examples) > 0 {
		obs, err := observe(ctx, engine, cfg, examples)
		if err != nil {
			return err
		}
		var custom, library []string
		libFiles := map[string]bool{}
		for _, s := range lib {
			libFiles[s.Name] = true
		}
		for _, p := range engine.Policies() {
			if libFiles[p.File] {
				library = append(library, p.Name)
			} else {
				custom = append(custom, p.Name)
			}
		}
		found = append(found, analysis.Patches(obs)...)
		found = append(found, analysis.Duplicates(obs, custom, library)...)
	}
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

// readConflictInputs reads the files' PolicyConfig resources, and the other objects as example manifests.
func readConflictInputs(cmd *cobra.Command, paths []string) ([]v1alpha1.PolicyConfig, []manifest.Object, error) {
	if len(paths) == 0 {
		return nil, nil, nil
	}
	sources, err := manifest.Collect(paths, cmd.InOrStdin())
	if err != nil {
		return nil, nil, err
	}
	var out []v1alpha1.PolicyConfig
	var examples []manifest.Object
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil {
				return nil, nil, err
			}
			objs, err := doc.Objects()
			if err != nil {
				return nil, nil, err
			}
			for _, obj := range objs {
				if obj.Object["kind"] != "PolicyConfig" || obj.Object["apiVersion"] != v1alpha1.GroupVersion.String() {
					if !isPolicyException(obj.Object) && !isGatekeeperDocument(obj.Object) && !isCedarInput(obj.Object) {
						examples = append(examples, obj)
					}
					continue
				}
				raw, _ := json.Marshal(obj.Object)
				var pc v1alpha1.PolicyConfig
				if err := json.Unmarshal(raw, &pc); err != nil {
					return nil, nil, fmt.Errorf("%s:%d: PolicyConfig: %w", obj.File, obj.Line, err)
				}
				if pc.Name == "" || pc.Spec.Policy == "" {
					return nil, nil, fmt.Errorf("%s:%d: PolicyConfig: metadata.name and spec.policy are required", obj.File, obj.Line)
				}
				out = append(out, pc)
			}
		}
	}
	return out, examples, nil
}

// observe runs each example object through the pipeline as a CREATE, as `policy check` does, validating and
// mutating, and keeps where each policy reported and what each mutating policy wrote.
func observe(ctx context.Context, engine *policies.Engine, cfg *config.Config, objs []manifest.Object) ([]analysis.Observation, error) {
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]analysis.Observation, 0, len(objs))
	for _, obj := range objs {
		in := admission.ObjectInput(obj.Object, "default", now)
		o := analysis.Observation{
			Object:   fmt.Sprintf("%s %s (%s:%d)", in.Request.Kind, objectName(in.Request.Namespace, in.Request.Name), obj.File, obj.Line),
			Findings: map[string][]string{}, Patches: map[string][]analysis.PatchWrite{},
		}
		for _, r := range eval.Evaluate(ctx, in).Results {
			for _, f := range r.Findings {
				o.Findings[r.Policy] = append(o.Findings[r.Policy], f.Path)
			}
		}
		for _, p := range eval.Mutate(ctx, in).Patches {
			if p.Policy != "" {
				o.Patches[p.Policy] = append(o.Patches[p.Policy], analysis.PatchWrite{Op: p.Op, Path: p.Path, Value: p.Value})
			}
		}
		out = append(out, o)
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
