//go:build !lean

package bundles

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// gatekeeperDoc is one Gatekeeper document of a bundle's YAML file: its object, where it starts, and its text
// placed at its lines in the file (so a compiler's line inside an embedded Rego block maps to the file's line).
type gatekeeperDoc struct {
	at   string
	file string
	obj  *unstructured.Unstructured
	text []byte
}

// gatekeeperPolicies compiles the bundle's Gatekeeper documents as `attest policy check` does: every
// ConstraintTemplate (Rego or CEL, with its parameters' schema), then the ExpansionTemplates, then each constraint
// against its template's schema. Each constraint becomes the policy "<Kind>/<name>", reviewed by a Set of its own
// (data.inventory is empty: a bundle carries policy, not cluster state). A YAML document that is not a
// Gatekeeper document, or a constraint whose template is not in the bundle, is refused. Errors name file:line.
func gatekeeperPolicies(ctx context.Context, files []File, prefix string) ([]*policies.Policy, error) {
	var templates, expansions, constraints []gatekeeperDoc
	for _, f := range files {
		file := named(prefix, f.Path)
		for doc, err := range manifest.Documents(manifest.Source{Name: file, Data: f.Data}) {
			if err != nil {
				return nil, err
			}
			objs, err := doc.Objects()
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				d := gatekeeperDoc{at: fmt.Sprintf("%s:%d", o.File, o.Line), file: file, obj: &unstructured.Unstructured{Object: o.Object},
					text: append(bytes.Repeat([]byte("\n"), doc.Line()-1), doc.Bytes()...)}
				switch gvk := d.obj.GroupVersionKind(); gvk.Group {
				case gatekeeper.TemplateGroup:
					templates = append(templates, d)
				case gatekeeper.ExpansionGroup:
					expansions = append(expansions, d)
				case gatekeeper.ConstraintGroup:
					constraints = append(constraints, d)
				default:
					return nil, fmt.Errorf("%s: %s %s is not a Gatekeeper document (a bundle's YAML holds ConstraintTemplates, constraints and ExpansionTemplates only)", d.at, gvk.Kind, d.obj.GetName())
				}
			}
		}
	}
	set, err := gatekeeper.NewSet(gatekeeper.Options{EnforcementPoint: gatekeeper.EnforcementPointWebhook})
	if err != nil {
		return nil, err
	}
	for _, d := range templates {
		t, err := gatekeeper.TemplateFrom(d.obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.at, err)
		}
		if err := set.AddTemplate(ctx, t, d.at); err != nil {
			if line := gatekeeper.ErrorLine(d.text, err); line > 0 {
				return nil, fmt.Errorf("%s:%d: %s", d.file, line, strings.TrimPrefix(err.Error(), d.at+": "))
			}
			return nil, err
		}
	}
	for _, d := range expansions {
		e, err := gatekeeper.ExpansionTemplateFrom(d.obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.at, err)
		}
		if err := set.AddExpansionTemplate(e, d.at); err != nil {
			return nil, err
		}
	}
	for _, d := range constraints {
		k, err := gatekeeper.ConstraintFrom(d.obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.at, err)
		}
		if !set.IsConstraintKind(k.Kind()) {
			return nil, fmt.Errorf("%s: constraint %s: no ConstraintTemplate of the bundle defines the kind %s (a bundle carries the templates of its constraints)", d.at, k.Policy(), k.Kind())
		}
		if err := set.AddConstraint(ctx, k, d.at); err != nil {
			return nil, err
		}
	}
	return set.Policies()
}
