package cedar_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/continuums/attest/policies/cedar"
)

// fixtureCRDs reads the test CRDs (CronTab in stable.example.com, Backup in data-protection.example.org).
func fixtureCRDs(t testing.TB) []apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var out []apiextensionsv1.CustomResourceDefinition
	for _, f := range []string{"crontab.yaml", "backup.json"} {
		path := filepath.Join("testdata", "crds", f)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		crds, err := cedar.ReadCRDs(path, raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, crds...)
	}
	return out
}

// useCRDs installs crds for the test and restores the built-in schema after it (the schema is process-wide:
// tests using it are not parallel).
func useCRDs(t testing.TB, crds []apiextensionsv1.CustomResourceDefinition) []error {
	t.Helper()
	skipped, err := cedar.UseCustomKinds(crds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cedar.UseCustomKinds(nil); err != nil {
			t.Error(err)
		}
	})
	return skipped
}

const crontabPolicy = `@id("no-every-minute")
@message("CronTabs may not run every minute")
forbid (principal, action == k8s::admission::Action::"create", resource is com::example::stable::v1::CronTab)
when { resource has spec && resource.spec.cronSpec == "* * * * *" };
`

func TestReadCRDs(t *testing.T) {
	crds := fixtureCRDs(t)
	if len(crds) != 2 || crds[0].Name != "crontabs.stable.example.com" || crds[1].Name != "backups.data-protection.example.org" {
		t.Fatalf("read %d CRDs: %+v", len(crds), crds)
	}
	tests := []struct{ name, text, want string }{
		{"not YAML", "apiVersion: [", "bad.yaml: document 1:"},
		{"v1beta1", "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\n", `bad.yaml: document 1: apiVersion "apiextensions.k8s.io/v1beta1": want apiextensions.k8s.io/v1`},
		{"unknown field", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x.example.com}\nspec: {grup: example.com}\n", `bad.yaml: document 1 (CustomResourceDefinition x.example.com): error unmarshaling JSON: while decoding JSON: json: unknown field "grup"`},
		{"second document", "kind: ConfigMap\napiVersion: v1\n---\napiVersion: v1\nkind: List\nitems: []\n", "bad.yaml: document 2: a List"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cedar.ReadCRDs("bad.yaml", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCustomKindsValidate(t *testing.T) {
	// Before: the built-in schema does not know the CronTab.
	s, err := cedar.Parse(cedar.Source{Name: "crontab.cedar", Text: crontabPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "unrecognized entity type `com::example::stable::v1::CronTab`") {
		t.Fatalf("built-in schema: %v, want unrecognized entity type", err)
	}
	if skipped := useCRDs(t, fixtureCRDs(t)); len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	const head = "forbid (principal, action, resource is com::example::stable::v1::CronTab)\n"
	tests := []struct{ name, text, want string }{
		{"required field without has", crontabPolicy, ""},
		{"integer is a Long", head + `when { resource has spec && resource.spec has replicas && resource.spec.replicas > 3 };`, ""},
		{"boolean is a Bool", head + `when { resource has spec && resource.spec has protected && resource.spec.protected };`, ""},
		{"number is a String", head + `when { resource has spec && resource.spec has ratio && resource.spec.ratio == "0.5" };`, ""},
		{"int-or-string is a String", head + `when { resource has spec && resource.spec has port && resource.spec.port == "http" };`, ""},
		{"array of strings is a Set", head + `when { resource has spec && resource.spec has tags && resource.spec.tags.contains("prod") };`, ""},
		{"string map is key-value records", head + `when { resource has spec && resource.spec has selector && resource.spec.selector.contains({"key": "app", "value": "web"}) };`, ""},
		{"array of objects", head + `when { resource has spec && resource.spec has owners && resource.spec.owners.isEmpty() };`, ""},
		{"metadata is ObjectMeta", head + `when { resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({"key": "a", "value": "b"}) };`, ""},
		{"apiVersion", head + `when { resource has apiVersion && resource.apiVersion == "stable.example.com/v1" };`, ""},
		{"old object on update", "forbid (principal, action == k8s::admission::Action::\"update\", resource is com::example::stable::v1::CronTab)\n" +
			`when { resource has oldObject && resource.oldObject has spec && resource has spec && resource.oldObject.spec.cronSpec != resource.spec.cronSpec };`, ""},
		{"group with a hyphen", `forbid (principal, action, resource is org::example::data_protection::v1alpha1::Backup) when { resource.spec has retentionDays && resource.spec.retentionDays < 7 };`, ""},
		{"misspelt field", head + "when {\n  resource has spec && resource.spec.cronSpc == \"x\" };",
			"crontab.cedar:1:1: policy crontab.cedar:1: attribute `spec.cronSpc` on entity type `com::example::stable::v1::CronTab` not found"},
		{"wrong type", head + `when { resource has spec && resource.spec has replicas && resource.spec.replicas == "3" };`, "crontab.cedar:1:1: policy crontab.cedar:1:"},
		{"optional field unguarded", head + `when { resource has spec && resource.spec.image == "x" };`, "unable to guarantee safety of access to optional attribute `spec.image`"},
		{"preserve-unknown-fields is left out", head + `when { resource has spec && resource.spec.extra == "x" };`, "attribute `spec.extra` on entity type `com::example::stable::v1::CronTab` not found"},
		{"untyped field is left out", head + `when { resource has spec && resource.spec.anything == "x" };`, "attribute `spec.anything` on entity type `com::example::stable::v1::CronTab` not found"},
		{"version not served", `forbid (principal, action, resource is com::example::stable::v1beta1::CronTab);`, "unrecognized entity type `com::example::stable::v1beta1::CronTab`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cedar.Parse(cedar.Source{Name: "crontab.cedar", Text: tc.text})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, cedar.ErrInvalid) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func crontab(name, cronSpec string, spec map[string]any) map[string]any {
	if spec == nil {
		spec = map[string]any{}
	}
	spec["cronSpec"] = cronSpec
	return map[string]any{"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]any{"name": name, "namespace": "default"}, "spec": spec}
}

func TestCustomKindsDecide(t *testing.T) {
	useCRDs(t, fixtureCRDs(t))
	const protect = `@id("protected-crontabs")
@message("this CronTab is protected")
forbid (principal, action == k8s::admission::Action::"delete", resource is com::example::stable::v1::CronTab)
when { resource has spec && resource.spec has protected && resource.spec.protected };
@id("few-replicas")
@message("at most 3 replicas")
forbid (principal, action == k8s::admission::Action::"create", resource is com::example::stable::v1::CronTab)
when { resource has spec && resource.spec has replicas && resource.spec.replicas > 3 };
@id("selector")
@message("CronTabs may not select app=db")
forbid (principal, action == k8s::admission::Action::"create", resource is com::example::stable::v1::CronTab)
when { resource has spec && resource.spec has selector && resource.spec.selector.contains({"key": "app", "value": "db"}) };
`
	s := parse(t, protect)
	if got := s.OperationKinds()["DELETE"]; len(got) != 1 || got[0] != "stable.example.com/CronTab" {
		t.Fatalf("DELETE kinds %v", got)
	}
	tests := []struct {
		name    string
		in      func() []opt
		op      string
		allowed bool
		reason  string
	}{
		{"protected deleted", func() []opt {
			return []opt{oldObject(crontab("a", "* * * * *", map[string]any{"protected": true}))}
		}, "DELETE", false, "protected-crontabs"},
		{"unprotected deleted", func() []opt {
			return []opt{oldObject(crontab("a", "* * * * *", map[string]any{"protected": false}))}
		}, "DELETE", true, ""},
		// A JSON number (float64, as decoded) converted to the Long the schema declares.
		{"too many replicas", func() []opt { return []opt{object(crontab("a", "x", map[string]any{"replicas": float64(5)}))} }, "CREATE", false, "few-replicas"},
		{"few replicas", func() []opt { return []opt{object(crontab("a", "x", map[string]any{"replicas": float64(2)}))} }, "CREATE", true, ""},
		{"string map", func() []opt {
			return []opt{object(crontab("a", "x", map[string]any{"selector": map[string]any{"app": "db", "tier": "backend"}}))}
		}, "CREATE", false, "selector"},
		// Fields the schema does not declare are not converted, whatever they hold.
		{"undeclared fields", func() []opt {
			return []opt{object(crontab("a", "x", map[string]any{"extra": map[string]any{"deep": []any{1.5, nil, map[string]any{}}}, "anything": 7}))}
		}, "CREATE", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := s.Decide(cedar.Options{}, input(tc.op, "stable.example.com", "v1", "CronTab", tc.in()...))
			if err != nil {
				t.Fatal(err)
			}
			if dec.Allowed != tc.allowed || len(dec.Errors) > 0 {
				t.Fatalf("decision %+v, want allowed %v", dec, tc.allowed)
			}
			if !tc.allowed && (len(dec.Reasons) != 1 || dec.Reasons[0] != tc.reason) {
				t.Fatalf("reasons %v, want %s", dec.Reasons, tc.reason)
			}
		})
	}
}

func crd(name, group, kind string, versions ...apiextensionsv1.CustomResourceDefinitionVersion) apiextensionsv1.CustomResourceDefinition {
	c := apiextensionsv1.CustomResourceDefinition{}
	c.Name = name
	c.Spec.Group = group
	c.Spec.Names.Kind = kind
	c.Spec.Versions = versions
	return c
}

func version(name string, props map[string]apiextensionsv1.JSONSchemaProps) apiextensionsv1.CustomResourceDefinitionVersion {
	return apiextensionsv1.CustomResourceDefinitionVersion{Name: name, Served: true, Schema: &apiextensionsv1.CustomResourceValidation{
		OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props}}}
}

func nested(depth int) apiextensionsv1.JSONSchemaProps {
	p := apiextensionsv1.JSONSchemaProps{Type: "string"}
	for range depth {
		p = apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"a": p}}
	}
	return p
}

func TestCustomKindsSkipped(t *testing.T) {
	good := crd("widgets.example.com", "example.com", "Widget", version("v1", map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}))
	tests := []struct {
		name string
		bad  apiextensionsv1.CustomResourceDefinition
		want string
	}{
		{"unknown type", crd("a.example.net", "example.net", "A", version("v1", map[string]apiextensionsv1.JSONSchemaProps{
			"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"x": {Type: "float"}}}})),
			`CustomResourceDefinition a.example.net: version v1: openAPIV3Schema.spec.x: unknown type "float"`},
		{"too deep", crd("b.example.net", "example.net", "B", version("v1", map[string]apiextensionsv1.JSONSchemaProps{"spec": nested(40)})),
			"CustomResourceDefinition b.example.net: version v1: openAPIV3Schema.spec.a.a."},
		{"kind not an identifier", crd("c.example.net", "example.net", "C-D", version("v1", nil)),
			`CustomResourceDefinition c.example.net: spec.names.kind "C-D" is not a Cedar identifier`},
		{"reserved group label", crd("d.in", "in", "D", version("v1", nil)),
			`CustomResourceDefinition d.in: spec.group "in": "in" is not a Cedar identifier`},
		{"a built-in kind", crd("deployments.apps", "apps", "Deployment", version("v1", nil)),
			"CustomResourceDefinition deployments.apps: version v1: apps::v1::Deployment is a built-in kind"},
		{"a built-in type", crd("specs.apps", "apps", "DeploymentSpec", version("v1", nil)),
			"CustomResourceDefinition specs.apps: version v1: apps::v1::DeploymentSpec is the name of a built-in type"},
		{"ATTEST's namespace", crd("actions.k8s", "k8s", "Action", version("admission", nil)),
			"CustomResourceDefinition actions.k8s: version admission: k8s::admission::Action is in a namespace of ATTEST's own schema"},
		{"same entity type twice", crd("x-widgets.example.com", "example.com", "Widget", version("v1", nil)),
			"CustomResourceDefinition x-widgets.example.com: version v1: com::example::v1::Widget is already the entity type of CustomResourceDefinition widgets.example.com"},
		{"a property Cedar cannot name", crd("e.example.net", "example.net", "E", version("v1", map[string]apiextensionsv1.JSONSchemaProps{"a\"b": {Type: "string"}})),
			`CustomResourceDefinition e.example.net: version v1: openAPIV3Schema: property "a\"b"`},
		{"$ref", crd("f.example.net", "example.net", "F", version("v1", map[string]apiextensionsv1.JSONSchemaProps{"s": {Ref: new(string)}})),
			"CustomResourceDefinition f.example.net: version v1: openAPIV3Schema.s: $ref is not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			skipped := useCRDs(t, []apiextensionsv1.CustomResourceDefinition{good, tc.bad})
			if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), tc.want) {
				t.Fatalf("skipped %v, want one containing %q", skipped, tc.want)
			}
			// The good CRD and the built-ins are still there.
			parse(t, `forbid (principal, action, resource is com::example::v1::Widget) when { resource has size && resource.size > 1 };
forbid (principal, action, resource is apps::v1::Deployment) when { resource has spec && resource.spec has replicas && resource.spec.replicas > 1 };`)
		})
	}
}

func TestUseCustomKindsRestores(t *testing.T) {
	before, err := cedar.SchemaText()
	if err != nil {
		t.Fatal(err)
	}
	useCRDs(t, fixtureCRDs(t))
	with, err := cedar.SchemaText()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"namespace com::example::stable::v1 {\n\tentity CronTab = {",
		`"cronSpec": __cedar::String`,
		`"replicas"?: __cedar::Long`,
		`"selector"?: Set<meta::v1::KeyValue>`,
		`"owners"?: Set<{"email"?: __cedar::String, "name": __cedar::String}>`,
		`"metadata"?: meta::v1::ObjectMeta`,
		"namespace org::example::data_protection::v1alpha1 {\n\tentity Backup = {",
		`"spec": {"retentionDays"?: __cedar::Long, "target"?: __cedar::String}`,
	} {
		if !strings.Contains(with, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
	if strings.Contains(with, "v1beta1::CronTab") || strings.Contains(with, `"anything"`) {
		t.Error("schema declares what it should leave out (an unserved version, a preserve-unknown-fields field)")
	}
	if g, k := cedar.KindOf("org::example::data_protection::v1alpha1::Backup"); g != "data-protection.example.org" || k != "Backup" {
		t.Errorf("KindOf = %s, %s", g, k)
	}
	if _, err := cedar.UseCustomKinds(nil); err != nil {
		t.Fatal(err)
	}
	after, err := cedar.SchemaText()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatal("UseCustomKinds(nil) did not restore the built-in schema")
	}
}

// BenchmarkUseCustomKinds is the cost of a schema change in serve: the built-in kinds' walk is shared, the text
// is written, parsed and resolved again (go test -bench UseCustomKinds -run '^$' ./policies/cedar).
func BenchmarkUseCustomKinds(b *testing.B) {
	crds := fixtureCRDs(b)
	for _, n := range []int{1, 10, 100} {
		list := make([]apiextensionsv1.CustomResourceDefinition, 0, n)
		for i := range n {
			c := crds[i%2].DeepCopy()
			c.Name = c.Name + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			c.Spec.Group = string(rune('a'+i%26)) + string(rune('a'+i/26)) + "." + c.Spec.Group
			list = append(list, *c)
		}
		b.Run(fmt.Sprintf("%dCRDs", n), func(b *testing.B) {
			for b.Loop() {
				if skipped, err := cedar.UseCustomKinds(list); err != nil || len(skipped) > 0 {
					b.Fatal(err, skipped)
				}
			}
		})
	}
	if _, err := cedar.UseCustomKinds(nil); err != nil {
		b.Fatal(err)
	}
}
