//go:build !lean

package main

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// inventoryDoc is one document's objects for data.inventory, or why it cannot be read.
type inventoryDoc struct {
	objs []manifest.Object
	err  error
}

// gatekeeperPolicies compiles the inputs' templates and makes each constraint a policy, as `gator test` does:
// templates first, then ExpansionTemplates and constraints, then data.inventory, which holds the --inventory
// objects and, as in gator, the other objects checked (when a template reads it). Each error names the
// document's file and line.
func gatekeeperPolicies(ctx context.Context, g gatekeeperInputs, sources, inventory []manifest.Source, expandWorkloads bool) ([]*policies.Policy, error) {
	if g.empty() {
		switch {
		case len(inventory) > 0:
			return nil, fmt.Errorf("--inventory: no ConstraintTemplate among the inputs reads data.inventory")
		case expandWorkloads:
			return nil, fmt.Errorf("--expand-workloads: no Gatekeeper constraint among the inputs")
		}
		return nil, nil
	}
	set, err := gatekeeper.NewSet(gatekeeper.Options{EnforcementPoint: gatekeeper.EnforcementPointWebhook})
	if err != nil {
		return nil, err
	}
	at := func(o manifest.Object) string { return fmt.Sprintf("%s:%d", o.File, o.Line) }
	readsInventory := false
	for _, o := range g.templates {
		t, err := gatekeeper.TemplateFrom(&unstructured.Unstructured{Object: o.Object})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(o), err)
		}
		if err := set.AddTemplate(ctx, t, at(o)); err != nil {
			return nil, err
		}
		readsInventory = readsInventory || t.ReadsInventory()
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
	if expandWorkloads {
		if err := set.ExpandWorkloads(); err != nil {
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
	// Documents are parsed on every core; objects join data.inventory in input order. When no template reads
	// data.inventory, only the inputs' Namespaces are needed (namespaceSelector matches their labels), and the
	// other documents are not parsed twice.
	for _, group := range []struct {
		flag    string
		sources []manifest.Source
	}{{"--inventory", inventory}, {"-f", sources}} {
		var firstErr error
		onlyNamespaces := group.flag == "-f" && !readsInventory
		manifest.Walk(ctx, group.sources, goruntime.GOMAXPROCS(0), func(doc manifest.Document, err error) inventoryDoc {
			if err != nil {
				return inventoryDoc{err: err}
			}
			if onlyNamespaces && !doc.MayHold("Namespace") {
				return inventoryDoc{}
			}
			objs, err := doc.Objects()
			return inventoryDoc{objs: objs, err: err}
		}, func(d inventoryDoc) {
			if firstErr != nil {
				return
			}
			if d.err != nil {
				if group.flag == "--inventory" {
					firstErr = d.err
				}
				return // -f: the check reports it
			}
			for _, o := range d.objs {
				if isGatekeeperDocument(o.Object) || isPolicyException(o.Object) || isAdmissionReview(o.Object) || (onlyNamespaces && !isNamespace(o.Object)) {
					continue
				}
				if err := set.AddInventory(ctx, &unstructured.Unstructured{Object: o.Object}); err != nil {
					firstErr = fmt.Errorf("%s: %w", at(o), err)
					return
				}
			}
		})
		if firstErr != nil {
			return nil, fmt.Errorf("%s: %w", group.flag, firstErr)
		}
	}
	return set.Policies()
}

// withGatekeeperInputs adds the constraints among the inputs to the engine as policies.
func withGatekeeperInputs(ctx context.Context, cmd *cobra.Command, engine *policies.Engine, o checkOptions, sources []manifest.Source) (*policies.Engine, error) {
	var inventory []manifest.Source
	inventoryPaths := o.inventory
	if slices.Contains(inventoryPaths, "-") && slices.Contains(o.files, "-") {
		return nil, fmt.Errorf("--inventory -: stdin is already read by -f -")
	}
	if len(inventoryPaths) > 0 {
		var err error
		if inventory, err = manifest.Collect(inventoryPaths, cmd.InOrStdin()); err != nil {
			return nil, fmt.Errorf("--inventory: %w", err)
		}
	}
	ps, err := gatekeeperPolicies(ctx, readGatekeeperInputs(sources), sources, inventory, o.expandWorkloads)
	if err != nil || len(ps) == 0 {
		return engine, err
	}
	return engine.With(ps...)
}

// isNamespace reports whether a manifest object is a Namespace.
func isNamespace(obj map[string]any) bool {
	return obj["apiVersion"] == "v1" && obj["kind"] == "Namespace"
}
