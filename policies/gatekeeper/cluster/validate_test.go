package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/policies/gatekeeper"
	"github.com/continuums/attest/policies/gatekeeper/cluster"
)

func object(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := gatekeeper.ParseObjects(b)
	if err != nil || len(objs) == 0 {
		t.Fatalf("%s: %v", path, err)
	}
	return objs[0].Object
}

// TestValidate: what the resource webhook refuses at kubectl apply, with the field and the compiler's message,
// and what it lets through (a valid template; a constraint of a kind ATTEST has not loaded is not its business).
func TestValidate(t *testing.T) {
	ctx := context.Background()
	set, err := gatekeeper.NewSet(gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := gatekeeper.TemplateFrom(&unstructured.Unstructured{Object: object(t, "requiredlabels/template.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.AddTemplate(ctx, tmpl, "template.yaml"); err != nil {
		t.Fatal(err)
	}
	withAction := func(action string) map[string]any {
		u := &unstructured.Unstructured{Object: object(t, "requiredlabels/constraint.yaml")}
		_ = unstructured.SetNestedField(u.Object, action, "spec", "enforcementAction")
		return u.Object
	}
	unknownKind := &unstructured.Unstructured{Object: object(t, "requiredlabels/constraint.yaml")}
	unknownKind.SetKind("SomeoneElsesKind")
	for _, tc := range []struct {
		name string
		obj  map[string]any
		want string // substring of the only problem; "" for none
	}{
		{"valid template", object(t, "requiredlabels/template.yaml"), ""},
		{"rego syntax", object(t, "broken/rego-syntax.yaml"), "spec.targets: template"},
		{"rego undefined function", object(t, "broken/rego-undefined-function.yaml"), "rego_type_error"},
		{"cel expression", object(t, "broken/cel-expression.yaml"), "compilation failed: ERROR: <input>:1:10"},
		{"name is not the kind", object(t, "broken/name-not-kind.yaml"), "spec.targets:"},
		{"unknown target", object(t, "broken/unknown-target.yaml"), "spec.targets:"},
		{"valid constraint", object(t, "requiredlabels/constraint.yaml"), ""},
		{"parameters against the schema", object(t, "requiredlabels/constraint-bad-parameters.yaml"), "spec: constraint AttestRequiredLabels/"},
		{"unknown enforcementAction", withAction("block"), "block"},
		{"kind ATTEST has not loaded", unknownKind.Object, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cluster.Validate(ctx, set, tc.obj)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("refused: %q", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("problems %q, want one containing %q", got, tc.want)
			}
		})
	}
}
