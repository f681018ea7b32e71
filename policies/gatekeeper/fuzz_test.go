package gatekeeper_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// FuzzParse: templates, constraints, ExpansionTemplates and objects come from users (files, and later the
// cluster); reading them, compiling the templates, placing their errors, adding the constraints and reviewing
// an object with them (directly, and as pipeline policies with expansion) never panics, and a template that
// compiles has the kind it names.
func FuzzParse(f *testing.F) {
	for _, name := range []string{
		"requiredlabels/template.yaml", "requiredlabels/constraint.yaml", "requiredlabels/constraint-warn.yaml",
		"requiredlabels/constraint-bad-parameters.yaml", "allowedregistries/template.yaml", "allowedregistries/constraint.yaml",
		"namespaceowner/template.yaml", "namespaceowner/objects/configmap.yaml", "broken/rego-syntax.yaml",
		"broken/cel-expression.yaml", "allowedregistries/objects/delete-review.yaml",
		"expansion/expansion-deployments.yaml", "expansion/expansion-cronjobs-warn.yaml", "expansion/pods-have-owner.yaml",
	} {
		f.Add(readFile(f, name))
	}
	f.Add(append(append(readFile(f, "requiredlabels/template.yaml"), "\n---\n"...), readFile(f, "requiredlabels/constraint.yaml")...))
	f.Add(append(append(readFile(f, "allowedregistries/template.yaml"), "\n---\n"...), readFile(f, "allowedregistries/constraint.yaml")...))
	f.Add([]byte("apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: x}\nspec: {crd: {spec: {names: {kind: X}}}}\n"))
	target := object(f, pod("shop", "app=web", "docker.io/library/nginx:latest"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = gatekeeper.ParseTemplate(data)
		_, _ = gatekeeper.ParseConstraint(data)
		objs, err := gatekeeper.ParseObjects(data)
		if err != nil {
			return
		}
		c, err := gatekeeper.New(gatekeeper.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		set, err := gatekeeper.NewSet(gatekeeper.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if tmpl, err := gatekeeper.TemplateFrom(o); err == nil {
				err := c.AddTemplate(ctx, tmpl)
				if err == nil && tmpl.Name() == "" {
					t.Errorf("template without a name compiled: %v", o)
				}
				if err != nil {
					if line := gatekeeper.ErrorLine(data, err); line < 0 || line > bytes.Count(data, []byte("\n"))+2 {
						t.Errorf("error line %d outside the document", line)
					}
				}
				_ = set.AddTemplate(ctx, tmpl, "fuzz")
				continue
			}
			if e, err := gatekeeper.ExpansionTemplateFrom(o); err == nil {
				_ = set.AddExpansionTemplate(e, "fuzz")
				continue
			}
			if k, err := gatekeeper.ConstraintFrom(o); err == nil {
				_ = c.AddConstraint(ctx, k)
				_ = set.AddConstraint(ctx, k, "fuzz")
				continue
			}
			_ = c.AddInventory(ctx, o)
			_ = set.AddInventory(ctx, o)
		}
		_, _ = c.Review(ctx, target)
		ps, err := set.Policies()
		if err != nil {
			return
		}
		doc, err := policies.NewDocument(policies.Input{
			Request:  policies.Request{Operation: "CREATE", Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
			Resource: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": "shop"}, "spec": map[string]any{"template": target.Object}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			_, _ = p.Eval(ctx, doc, p.DefaultSettings())
		}
	})
}
