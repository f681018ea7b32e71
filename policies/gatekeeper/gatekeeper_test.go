package gatekeeper_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/policies/gatekeeper"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func template(t testing.TB, name string) *gatekeeper.Template {
	t.Helper()
	tmpl, err := gatekeeper.ParseTemplate(readFile(t, name))
	if err != nil {
		t.Fatalf("ParseTemplate(%s): %v", name, err)
	}
	return tmpl
}

func constraint(t testing.TB, doc string) *gatekeeper.Constraint {
	t.Helper()
	k, err := gatekeeper.ParseConstraint([]byte(doc))
	if err != nil {
		t.Fatalf("ParseConstraint: %v", err)
	}
	return k
}

func object(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	objs, err := gatekeeper.ParseObjects([]byte(doc))
	if err != nil || len(objs) != 1 {
		t.Fatalf("ParseObjects: %d objects, %v", len(objs), err)
	}
	return objs[0]
}

// client holds one template and one constraint.
func client(t testing.TB, tmpl, k string, o gatekeeper.Options) *gatekeeper.Client {
	t.Helper()
	c, err := gatekeeper.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddTemplate(context.Background(), template(t, tmpl)); err != nil {
		t.Fatal(err)
	}
	if err := c.AddConstraint(context.Background(), constraint(t, k)); err != nil {
		t.Fatal(err)
	}
	return c
}

func messages(rs []gatekeeper.Result) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Message)
	}
	return out
}

// pod builds a Pod document in namespace ns with the given labels ("k=v,k2=v2").
func pod(ns, labels string, images ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n")
	if ns != "" {
		b.WriteString("  namespace: " + ns + "\n")
	}
	if labels != "" {
		b.WriteString("  labels:\n")
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			b.WriteString("    " + k + ": \"" + v + "\"\n")
		}
	}
	b.WriteString("spec:\n  containers:\n")
	for i, img := range images {
		b.WriteString("    - name: c" + string(rune('0'+i)) + "\n      image: " + img + "\n")
	}
	return b.String()
}

const labelsConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: AttestRequiredLabels
metadata:
  name: must-have-owner
spec:
%s
  parameters:
    labels:
      - key: owner
`

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name, file, kind string
		err              error
	}{
		{name: "v1beta1 rego with libs", file: "requiredlabels/template.yaml", kind: "AttestRequiredLabels"},
		{name: "v1 K8sNativeValidation", file: "allowedregistries/template.yaml", kind: "AttestAllowedRegistries"},
		{name: "v1 rego", file: "namespaceowner/template.yaml", kind: "AttestNamespaceOwner"},
		{name: "a constraint is not a template", file: "requiredlabels/constraint.yaml", err: gatekeeper.ErrNotTemplate},
		{name: "a suite is not a template", file: "requiredlabels/suite.yaml", err: gatekeeper.ErrNotTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := gatekeeper.ParseTemplate(readFile(t, tt.file))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.Kind() != tt.kind || tmpl.Name() != strings.ToLower(tt.kind) {
				t.Errorf("kind %q name %q, want %q", tmpl.Kind(), tmpl.Name(), tt.kind)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		parse     func([]byte) error
		err       error
	}{
		{"template not yaml", "kind: [", func(b []byte) error { _, err := gatekeeper.ParseTemplate(b); return err }, gatekeeper.ErrInvalidYAML},
		{"template unknown version", "apiVersion: templates.gatekeeper.sh/v9\nkind: ConstraintTemplate\n",
			func(b []byte) error { _, err := gatekeeper.ParseTemplate(b); return err }, gatekeeper.ErrNotTemplate},
		{"code without source", "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: x}\nspec:\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      code: [{engine: K8sNativeValidation}]\n",
			func(b []byte) error { _, err := gatekeeper.ParseTemplate(b); return err }, gatekeeper.ErrInvalidTemplate},
		{"constraint of another group", "apiVersion: v1\nkind: ConfigMap\n",
			func(b []byte) error { _, err := gatekeeper.ParseConstraint(b); return err }, gatekeeper.ErrNotConstraint},
		{"objects not yaml", "a: b\n---\n: : :\n", func(b []byte) error { _, err := gatekeeper.ParseObjects(b); return err }, gatekeeper.ErrInvalidYAML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse([]byte(tt.doc)); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestParseObjectsAsGator(t *testing.T) {
	// YAML 1.2 scalars: "yes" and "on" stay strings (kubectl's YAML 1.1 would make them booleans); comment-only
	// and empty documents are skipped.
	objs, err := gatekeeper.ParseObjects([]byte("# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: yes\n  y: on\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetName() != "b" {
		t.Fatalf("objects = %v", objs)
	}
	data, _, _ := unstructured.NestedStringMap(objs[0].Object, "data")
	if want := map[string]string{"x": "yes", "y": "on"}; !reflect.DeepEqual(data, want) {
		t.Errorf("data = %v, want %v", data, want)
	}
}

func TestMatch(t *testing.T) {
	namespaces := []string{
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    environment: production\n",
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab\n  labels:\n    environment: development\n",
	}
	tests := []struct {
		name, match, object string
		violations          int
	}{
		{"no match: every object", "", pod("lab", ""), 1},
		{"kinds: matching", "  match:\n    kinds: [{apiGroups: [\"\"], kinds: [Pod]}]", pod("lab", ""), 1},
		{"kinds: other kind", "  match:\n    kinds: [{apiGroups: [apps], kinds: [Deployment]}]", pod("lab", ""), 0},
		{"kinds: wildcard group", "  match:\n    kinds: [{apiGroups: [\"*\"], kinds: [Pod]}]", pod("lab", ""), 1},
		{"namespaces: listed", "  match:\n    namespaces: [shop]", pod("shop", ""), 1},
		{"namespaces: not listed", "  match:\n    namespaces: [shop]", pod("lab", ""), 0},
		{"namespaces: prefix glob", "  match:\n    namespaces: [\"sh*\"]", pod("shop", ""), 1},
		{"excludedNamespaces", "  match:\n    excludedNamespaces: [shop]", pod("shop", ""), 0},
		{"excludedNamespaces: other namespace", "  match:\n    excludedNamespaces: [shop]", pod("lab", ""), 1},
		{"labelSelector: matching", "  match:\n    labelSelector: {matchLabels: {tier: web}}", pod("lab", "tier=web"), 1},
		{"labelSelector: not matching", "  match:\n    labelSelector: {matchLabels: {tier: web}}", pod("lab", "tier=db"), 0},
		{"labelSelector: expression", "  match:\n    labelSelector: {matchExpressions: [{key: tier, operator: In, values: [db, web]}]}", pod("lab", "tier=db"), 1},
		{"namespaceSelector: matching namespace", "  match:\n    namespaceSelector: {matchLabels: {environment: production}}", pod("shop", ""), 1},
		{"namespaceSelector: other namespace", "  match:\n    namespaceSelector: {matchLabels: {environment: production}}", pod("lab", ""), 0},
		{"scope Cluster: namespaced object", "  match:\n    scope: Cluster", pod("lab", ""), 0},
		{"scope Namespaced", "  match:\n    scope: Namespaced", pod("lab", ""), 1},
		{"name: exact", "  match:\n    name: web", pod("lab", ""), 1},
		{"name: other", "  match:\n    name: api", pod("lab", ""), 0},
		{"name: glob", "  match:\n    name: \"w*\"", pod("lab", ""), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, "requiredlabels/template.yaml", strings.Replace(labelsConstraint, "%s\n", tt.match+"\n", 1), gatekeeper.Options{})
			for _, ns := range namespaces {
				if err := c.AddInventory(context.Background(), object(t, ns)); err != nil {
					t.Fatal(err)
				}
			}
			rs, err := c.Review(context.Background(), object(t, tt.object))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != tt.violations {
				t.Fatalf("violations %q, want %d", messages(rs), tt.violations)
			}
			for _, r := range rs {
				if r.Policy != "AttestRequiredLabels/must-have-owner" || r.Kind != "AttestRequiredLabels" || r.Name != "must-have-owner" {
					t.Errorf("result names %q (%s, %s)", r.Policy, r.Kind, r.Name)
				}
			}
		})
	}
}

func TestEnforcementActions(t *testing.T) {
	tests := []struct {
		name, spec, ep string
		want           []string // the actions of the results
		err            string
	}{
		{name: "unset is deny", spec: "", want: []string{"deny"}},
		{name: "deny", spec: "  enforcementAction: deny", want: []string{"deny"}},
		{name: "dryrun", spec: "  enforcementAction: dryrun", want: []string{"dryrun"}},
		{name: "warn", spec: "  enforcementAction: warn", want: []string{"warn"}},
		{name: "scoped: this enforcement point", ep: gatekeeper.EnforcementPointWebhook,
			spec: "  enforcementAction: scoped\n  scopedEnforcementActions:\n    - action: warn\n      enforcementPoints: [{name: validation.gatekeeper.sh}]", want: []string{"scoped"}},
		{name: "scoped: another enforcement point", ep: gatekeeper.EnforcementPointWebhook,
			spec: "  enforcementAction: scoped\n  scopedEnforcementActions:\n    - action: deny\n      enforcementPoints: [{name: audit.gatekeeper.sh}]", want: nil},
		{name: "unknown action", spec: "  enforcementAction: block", err: "block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gatekeeper.New(gatekeeper.Options{EnforcementPoint: tt.ep})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.AddTemplate(ctx, template(t, "requiredlabels/template.yaml")); err != nil {
				t.Fatal(err)
			}
			err = c.AddConstraint(ctx, constraint(t, strings.Replace(labelsConstraint, "%s\n", tt.spec+"\n", 1)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("AddConstraint err = %v, want it to name %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rs, err := c.Review(ctx, object(t, pod("lab", "")))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.EnforcementAction)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("actions %v, want %v", got, tt.want)
			}
			if tt.spec != "" && strings.Contains(tt.spec, "scoped") && len(rs) == 1 && !reflect.DeepEqual(rs[0].ScopedActions, []string{"warn"}) {
				t.Errorf("scoped actions %v, want [warn]", rs[0].ScopedActions)
			}
		})
	}
}

func TestParameterSchema(t *testing.T) {
	tests := []struct {
		name, params string
		schemaErr    bool
	}{
		{"valid", "    labels: [{key: owner, allowedRegex: \"^[a-z]+$\"}]", false},
		{"labels not a list", "    labels: owner", true},
		{"key not a string", "    labels: [{key: 7}]", true},
		// As in gator: the framework validates types, not unknown fields (the API server would prune them).
		{"unknown field", "    labelz: [{key: owner}]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gatekeeper.New(gatekeeper.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.AddTemplate(ctx, template(t, "requiredlabels/template.yaml")); err != nil {
				t.Fatal(err)
			}
			doc := "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AttestRequiredLabels\nmetadata:\n  name: p\nspec:\n  parameters:\n" + tt.params + "\n"
			err = c.AddConstraint(ctx, constraint(t, doc))
			if got := gatekeeper.IsSchemaError(err); got != tt.schemaErr {
				t.Errorf("AddConstraint err = %v, schema error %v, want %v", err, got, tt.schemaErr)
			}
		})
	}
}

func TestRegoLibsAndDetails(t *testing.T) {
	c := client(t, "requiredlabels/template.yaml", string(readFile(t, "requiredlabels/constraint.yaml")), gatekeeper.Options{})
	rs, err := c.Review(context.Background(), object(t, pod("shop", "app=web")))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("results %q, want 1", messages(rs))
	}
	if want := `Pod web must have the labels {"owner"}`; rs[0].Message != want {
		t.Errorf("message %q, want %q", rs[0].Message, want)
	}
	if want := map[string]any{"missing_labels": []any{"owner"}}; !reflect.DeepEqual(rs[0].Details, want) {
		t.Errorf("details %#v, want %#v", rs[0].Details, want)
	}
}

func TestCEL(t *testing.T) {
	k := string(readFile(t, "allowedregistries/constraint.yaml"))
	tests := []struct {
		name, object string
		want         []string
	}{
		{"allowed", pod("shop", "", "registry.example.com/a:1", "ghcr.io/continuums/b:2"), []string{}},
		{"exempt image", pod("shop", "", "docker.io/library/busybox:1.36"), []string{}},
		{"messageExpression with params", pod("shop", "", "quay.io/x/y:1", "registry.example.com/a:1"),
			[]string{"containers c0 use images outside the allowed registries registry.example.com, ghcr.io/continuums"}},
		{"static message", pod("shop", "", "registry.example.com/a:latest"), []string{"images must not use the latest tag"}},
		{"both validations", pod("shop", "", "quay.io/x/y:latest"), []string{
			"containers c0 use images outside the allowed registries registry.example.com, ghcr.io/continuums",
			"images must not use the latest tag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, "allowedregistries/template.yaml", k, gatekeeper.Options{})
			rs, err := c.Review(context.Background(), object(t, tt.object))
			if err != nil {
				t.Fatal(err)
			}
			if got := messages(rs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("messages %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReviewRequest(t *testing.T) {
	raw := func(doc string) runtime.RawExtension {
		j, err := object(t, doc).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: j}
	}
	bad := pod("shop", "", "quay.io/x/y:1")
	good := pod("shop", "", "registry.example.com/a:1")
	tests := []struct {
		name       string
		req        admissionv1.AdmissionRequest
		violations int
	}{
		{"create", admissionv1.AdmissionRequest{Operation: admissionv1.Create, Object: raw(bad)}, 1},
		{"update judges the new object", admissionv1.AdmissionRequest{Operation: admissionv1.Update, Object: raw(good), OldObject: raw(bad)}, 0},
		{"delete judges the old object (variables.anyObject)", admissionv1.AdmissionRequest{Operation: admissionv1.Delete, OldObject: raw(bad)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, "allowedregistries/template.yaml", string(readFile(t, "allowedregistries/constraint.yaml")), gatekeeper.Options{})
			req := tt.req
			req.UID = "1"
			req.Kind.Kind, req.Kind.Version = "Pod", "v1"
			req.Resource.Resource, req.Resource.Version = "pods", "v1"
			req.Name, req.Namespace = "web", "shop"
			rs, err := c.ReviewRequest(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != tt.violations {
				t.Errorf("violations %q, want %d", messages(rs), tt.violations)
			}
		})
	}
}

func TestInventory(t *testing.T) {
	ns := func(labels string) string {
		return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: billing\n" + labels
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker-settings\n  namespace: billing\n"
	tests := []struct {
		name      string
		inventory []string
		want      []string
	}{
		{"owned namespace, config map present", []string{ns("  labels: {owner: billing}\n"), cm}, []string{}},
		{"namespace without owner", []string{ns(""), cm}, []string{"namespace billing has no owner label"}},
		{"config map missing", []string{ns("  labels: {owner: billing}\n")},
			[]string{"container worker reads ConfigMap worker-settings, which does not exist in namespace billing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, "namespaceowner/template.yaml", string(readFile(t, "namespaceowner/constraint.yaml")), gatekeeper.Options{})
			for _, doc := range tt.inventory {
				if err := c.AddInventory(context.Background(), object(t, doc)); err != nil {
					t.Fatal(err)
				}
			}
			rs, err := c.Review(context.Background(), object(t, string(readFile(t, "namespaceowner/objects/pod.yaml"))))
			if err != nil {
				t.Fatal(err)
			}
			if got := messages(rs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("messages %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBrokenTemplates(t *testing.T) {
	tests := []struct {
		file string
		want []string // each appears in the error
	}{
		{"broken/rego-syntax.yaml", []string{"attestbrokenrego", "rego_parse_error", "template:6"}},
		{"broken/rego-undefined-function.yaml", []string{"attestundefinedfunction", "rego_type_error: undefined function is_privileged"}},
		{"broken/cel-expression.yaml", []string{"attestbrokencel", "validation[0]", "undefined field 'undeclared'"}},
		{"broken/cel-variable.yaml", []string{"attestbrokencelvariable", "variable names", "no matching overload"}},
		{"broken/name-not-kind.yaml", []string{`"required-labels" is not equal to the lowercase of CRD's Kind`}},
		{"broken/unknown-target.yaml", []string{`target "mutation.k8s.gatekeeper.sh" not recognized`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := gatekeeper.New(gatekeeper.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = c.AddTemplate(context.Background(), template(t, tt.file))
			if err == nil {
				t.Fatal("AddTemplate accepted a broken template")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConstraintWithoutTemplate(t *testing.T) {
	c, err := gatekeeper.New(gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.AddConstraint(context.Background(), constraint(t, strings.Replace(labelsConstraint, "%s\n", "", 1)))
	if err == nil || !strings.Contains(err.Error(), "attestrequiredlabels") {
		t.Errorf("err = %v, want the missing template named", err)
	}
}

func TestPrint(t *testing.T) {
	const tmpl = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: attestprints
spec:
  crd:
    spec:
      names:
        kind: AttestPrints
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package attestprints

        violation[{"msg": "printed"}] {
          print("reviewing", input.review.object.metadata.name)
        }
`
	var out bytes.Buffer
	c, err := gatekeeper.New(gatekeeper.Options{Print: &out})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := gatekeeper.ParseTemplate([]byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.AddTemplate(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if err := c.AddConstraint(ctx, constraint(t, "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AttestPrints\nmetadata:\n  name: p\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Review(ctx, object(t, pod("lab", ""))); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "reviewing web\n" {
		t.Errorf("print output %q", got)
	}
}

func TestNoCEL(t *testing.T) {
	c, err := gatekeeper.New(gatekeeper.Options{NoCEL: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.AddTemplate(ctx, template(t, "allowedregistries/template.yaml")); err == nil || !strings.Contains(err.Error(), "no language driver") {
		t.Errorf("a CEL-only template without the CEL driver: err = %v", err)
	}
	if err := c.AddTemplate(ctx, template(t, "requiredlabels/template.yaml")); err != nil {
		t.Errorf("a Rego template without the CEL driver: %v", err)
	}
}
