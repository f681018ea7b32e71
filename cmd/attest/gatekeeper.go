//go:build !lean

package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// gatekeeperPolicies compiles the inputs' templates and makes each constraint a policy, as `gator test` does:
// templates first, then ExpansionTemplates and constraints, then data.inventory, which holds the --inventory
// objects and, as in gator, the other objects checked. Each error names the document's file and line.
func gatekeeperPolicies(ctx context.Context, g gatekeeperInputs, sources, inventory []manifest.Source) ([]*policies.Policy, error) {
	if g.empty() {
		if len(inventory) > 0 {
			return nil, fmt.Errorf("--inventory: no ConstraintTemplate among the inputs reads data.inventory")
		}
		return nil, nil
	}
	set, err := gatekeeper.NewSet(gatekeeper.Options{EnforcementPoint: gatekeeper.EnforcementPointWebhook})
	if err != nil {
		return nil, err
	}
	at := func(o manifest.Object) string { return fmt.Sprintf("%s:%d", o.File, o.Line) }
	for _, o := range g.templates {
		t, err := gatekeeper.TemplateFrom(&unstructured.Unstructured{Object: o.Object})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(o), err)
		}
		if err := set.AddTemplate(ctx, t, at(o)); err != nil {
			return nil, err
		}
	}
	for _, o := range g.expansions {
		e, err := gatekeeper.ExpansionTemplateFrom(&unstructured.Unstructured{Object: o.Object})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(o), err)
		}
		if err := set.AddExpansionTemplate(e, at(o)); err != nil {
			return nil, err
		}
	}
	for _, o := range g.constraints {
		k, err := gatekeeper.ConstraintFrom(&unstructured.Unstructured{Object: o.Object})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(o), err)
		}
		if err := set.AddConstraint(ctx, k, at(o)); err != nil {
			return nil, err
		}
	}
	add := func(o manifest.Object) error {
		if isGatekeeperDocument(o.Object) || isPolicyException(o.Object) {
			return nil
		}
		if err := set.AddInventory(ctx, &unstructured.Unstructured{Object: o.Object}); err != nil {
			return fmt.Errorf("%s: %w", at(o), err)
		}
		return nil
	}
	for _, group := range []struct {
		flag    string
		sources []manifest.Source
	}{{"--inventory", inventory}, {"-f", sources}} {
		for _, src := range group.sources {
			for doc, err := range manifest.Documents(src) {
				var objs []manifest.Object
				if err == nil {
					objs, err = doc.Objects()
				}
				if err != nil {
					if group.flag == "-f" {
						continue // the check reports it
					}
					return nil, fmt.Errorf("%s: %w", group.flag, err)
				}
				for _, o := range objs {
					if err := add(o); err != nil {
						return nil, fmt.Errorf("%s: %w", group.flag, err)
					}
				}
			}
		}
	}
	return set.Policies()
}

// withGatekeeperInputs adds the constraints among the inputs to the engine as policies.
func withGatekeeperInputs(ctx context.Context, cmd *cobra.Command, engine *policies.Engine, files []string, sources []manifest.Source, inventoryPaths []string) (*policies.Engine, error) {
	var inventory []manifest.Source
	if slices.Contains(inventoryPaths, "-") && slices.Contains(files, "-") {
		return nil, fmt.Errorf("--inventory -: stdin is already read by -f -")
	}
	if len(inventoryPaths) > 0 {
		var err error
		if inventory, err = manifest.Collect(inventoryPaths, cmd.InOrStdin()); err != nil {
			return nil, fmt.Errorf("--inventory: %w", err)
		}
	}
	ps, err := gatekeeperPolicies(ctx, readGatekeeperInputs(sources), sources, inventory)
	if err != nil || len(ps) == 0 {
		return engine, err
	}
	return engine.With(ps...)
}
