package gatekeeper_test

import (
	"context"
	"testing"

	"github.com/continuums/attest/policies/gatekeeper"
)

// FuzzParse: templates, constraints and objects come from users (files, and later the cluster); reading them,
// compiling the templates, adding the constraints and reviewing an object with them never panics, and a
// template that compiles has the kind it names.
func FuzzParse(f *testing.F) {
	for _, name := range []string{
		"requiredlabels/template.yaml", "requiredlabels/constraint.yaml", "requiredlabels/constraint-warn.yaml",
		"requiredlabels/constraint-bad-parameters.yaml", "allowedregistries/template.yaml", "allowedregistries/constraint.yaml",
		"namespaceowner/template.yaml", "namespaceowner/objects/configmap.yaml", "broken/rego-syntax.yaml",
		"broken/cel-expression.yaml", "allowedregistries/objects/delete-review.yaml",
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
		for _, o := range objs {
			if tmpl, err := gatekeeper.TemplateFrom(o); err == nil {
				if err := c.AddTemplate(ctx, tmpl); err == nil && tmpl.Name() == "" {
					t.Errorf("template without a name compiled: %v", o)
				}
				continue
			}
			if k, err := gatekeeper.ConstraintFrom(o); err == nil {
				_ = c.AddConstraint(ctx, k)
				continue
			}
			_ = c.AddInventory(ctx, o)
		}
		_, _ = c.Review(ctx, target)
	})
}
