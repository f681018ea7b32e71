package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

const forbidHostNetwork = `@id("no-host-network") @message("no host network")
forbid (principal, action, resource is core::v1::Pod) when { resource has spec && resource.spec has hostNetwork && resource.spec.hostNetwork };
`

func writeCedarFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCedarDirectories(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		config  string
		want    []string // Cedar policies in the engine
		wantErr string
	}{
		{"each file is a policy named after it", map[string]string{"cedar/pods.cedar": forbidHostNetwork, "cedar/README.md": "not cedar"},
			"cedar:\n  directories: [cedar]\npolicies:\n  - name: pods\n    mode: audit\n", []string{"pods"}, ""},
		{"a syntax error names file and line", map[string]string{"cedar/bad.cedar": "forbid (principal, action, resource)\nwhen { };"},
			"cedar:\n  directories: [cedar]\n", nil, "cedar.directories[0]: invalid Cedar policy: parser error: parse error at "},
		{"a schema error names file and line", map[string]string{"cedar/bad.cedar": "\nforbid (principal, action, resource is core::v1::Pdo);"},
			"cedar:\n  directories: [cedar]\n", nil, "bad.cedar:2:1: policy "},
		{"a file name that is no policy name", map[string]string{"cedar/Bad_Name.cedar": forbidHostNetwork},
			"cedar:\n  directories: [cedar]\n", nil, `"Bad_Name" is not a policy name`},
		{"a missing directory", nil, "cedar:\n  directories: [nowhere]\n", nil, "cedar.directories[0]: stat "},
		{"a name taken by the library", map[string]string{"cedar/no-privileged.cedar": forbidHostNetwork},
			"cedar:\n  directories: [cedar]\n", nil, "the name is taken"},
		{"an unknown key", nil, "cedar:\n  directory: [cedar]\n", nil, `unknown field "cedar.directory"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tc.files {
				writeCedarFile(t, filepath.Join(dir, name), text)
			}
			writeCedarFile(t, filepath.Join(dir, "policies.yaml"), tc.config)
			cfg, err := config.LoadFiles([]string{filepath.Join(dir, "policies.yaml")}, newEngine(t), config.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.want {
				p, ok := cfg.Engine.Lookup(name)
				if !ok || p.Evaluator() == nil {
					t.Fatalf("policy %s not in the engine", name)
				}
				if cfg.Policies[name].Mode != policies.ModeAudit {
					t.Fatalf("mode %q, want audit from policies:", cfg.Policies[name].Mode)
				}
			}
		})
	}
}

func cedarPolicy(name, text string) v1alpha1.Policy {
	return v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: v1alpha1.PolicySpec{Cedar: text}}
}

// TestCedarPolicyResources: a Policy with spec.cedar is a policy; an invalid change is reported and the last good
// set keeps running; the validating webhook refuses it with the line.
func TestCedarPolicyResources(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	file, err := config.Parse(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	good := config.Overlay(ctx, librarySources(t), file, nil, config.Resources{Policies: []v1alpha1.Policy{cedarPolicy("pods", forbidHostNetwork)}})
	p, ok := good.Engine.Lookup("pods")
	if !ok || !good.Resources["Policy/pods"].Valid || good.Policies["pods"].Mode != policies.ModeEnforce {
		t.Fatalf("pods: %v %+v %+v", ok, good.Resources["Policy/pods"], good.Policies["pods"])
	}
	bad := config.Overlay(ctx, librarySources(t), file, good, config.Resources{Policies: []v1alpha1.Policy{cedarPolicy("pods", "forbid (principal, action, resource) when { context.nope };")}})
	st := bad.Resources["Policy/pods"]
	if st.Valid || !strings.Contains(st.Message, "spec.cedar: invalid Cedar policy: Policy/pods:1:1: policy Policy/pods:1:") || !strings.Contains(st.Message, "the last good version keeps running") {
		t.Fatalf("status %+v", st)
	}
	if kept, ok := bad.Engine.Lookup("pods"); !ok || kept != p {
		t.Fatal("the last good set is not kept")
	}
	for _, tc := range []struct {
		name string
		pol  v1alpha1.Policy
		want string
	}{
		{"valid", cedarPolicy("pods", forbidHostNetwork), ""},
		{"schema error", cedarPolicy("pods", "\n\nforbid (principal, action, resource is apps::v1::Deploymnet);"), "spec.cedar: invalid Cedar policy: Policy/pods:3:1: policy Policy/pods:3: unrecognized entity type `apps::v1::Deploymnet`"},
		{"syntax error", cedarPolicy("pods", "forbid (principal, action, resource"), "spec.cedar: invalid Cedar policy: parser error: parse error at Policy/pods:1:"},
		{"rego and cedar", v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "pods"}, Spec: v1alpha1.PolicySpec{Cedar: forbidHostNetwork, Rego: "package x"}}, "spec.cedar: a Policy defines spec.rego or spec.cedar, not both"},
		{"a library name", cedarPolicy("no-privileged", forbidHostNetwork), `metadata.name: "no-privileged" is already a policy`},
		{"bad mode", v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "pods"}, Spec: v1alpha1.PolicySpec{Cedar: forbidHostNetwork, Mode: "loud"}}, "spec.mode: unknown mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := config.ValidatePolicy(ctx, librarySources(t), good, good.Engine, &tc.pol)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOperations(t *testing.T) {
	dir := t.TempDir()
	writeCedarFile(t, filepath.Join(dir, "cedar", "deletes.cedar"), `forbid (principal in k8s::Group::"audit", action == k8s::admission::Action::"delete", resource);`)
	load := func(extra string) []string {
		writeCedarFile(t, filepath.Join(dir, "policies.yaml"), "cedar:\n  directories: [cedar]\n"+extra)
		cfg, err := config.LoadFiles([]string{filepath.Join(dir, "policies.yaml")}, newEngine(t), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Operations(nil)
	}
	if got := strings.Join(load(""), ","); got != "DELETE" {
		t.Fatalf("operations %q, want DELETE", got)
	}
	if got := load("policies:\n  - name: deletes\n    mode: \"off\"\n"); len(got) != 0 {
		t.Fatalf("a policy that is off needs no operation: %v", got)
	}
	// Kinds: a set naming Deployments narrows DELETE to them; beside one that names every resource, none does.
	writeCedarFile(t, filepath.Join(dir, "cedar2", "deployments.cedar"), `forbid (principal, action == k8s::admission::Action::"delete", resource is apps::v1::Deployment);`)
	kinds := func(dirs string) string {
		writeCedarFile(t, filepath.Join(dir, "policies.yaml"), "cedar:\n  directories: ["+dirs+"]\n")
		cfg, err := config.LoadFiles([]string{filepath.Join(dir, "policies.yaml")}, newEngine(t), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(cfg.OperationKinds(nil))
	}
	if got := kinds("cedar2"); got != "map[DELETE:[apps/Deployment]]" {
		t.Fatalf("narrowed: %s", got)
	}
	if got := kinds("cedar, cedar2"); got != "map[DELETE:[]]" {
		t.Fatalf("beside an unscoped forbid: %s", got)
	}
}

// TestWatcherReloadsCedarFiles: editing a .cedar file reloads the configuration like editing policies.yaml; an
// invalid edit keeps the last good set.
func TestWatcherReloadsCedarFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cedar", "pods.cedar")
	writeCedarFile(t, file, forbidHostNetwork)
	writeCedarFile(t, filepath.Join(dir, "policies.yaml"), "cedar:\n  directories: [cedar]\n")
	w, err := config.NewWatcher(filepath.Join(dir, "policies.yaml"), newEngine(t), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := func() string {
		p, ok := w.Current().Engine.Lookup("pods")
		if !ok {
			t.Fatal("no policy pods")
		}
		return p.Digest
	}
	first := digest()
	w.Reload()
	if digest() != first {
		t.Fatal("a reload with nothing changed changed the policy")
	}
	writeCedarFile(t, file, forbidHostNetwork+"\nforbid (principal in k8s::Group::\"audit\", action, resource);\n")
	w.Reload()
	second := digest()
	if second == first {
		t.Fatal("the edited .cedar file was not reloaded")
	}
	writeCedarFile(t, file, "forbid (principal, action, resource) when { context.nope };")
	w.Reload()
	if digest() != second {
		t.Fatal("an invalid edit replaced the last good set")
	}
}

// TestWatcherReloadsCedarFilesForNewKinds: a .cedar file about a kind the schema does not know fails to load and
// the last good set stays; once the kind's CRD is given to the schema, the next poll loads the file unchanged.
func TestWatcherReloadsCedarFilesForNewKinds(t *testing.T) {
	dir := t.TempDir()
	writeCedarFile(t, filepath.Join(dir, "cedar", "pods.cedar"), forbidHostNetwork)
	writeCedarFile(t, filepath.Join(dir, "policies.yaml"), "cedar:\n  directories: [cedar]\n")
	w, err := config.NewWatcher(filepath.Join(dir, "policies.yaml"), newEngine(t), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cedar.UseCustomKinds(nil); err != nil {
			t.Error(err)
		}
	})
	writeCedarFile(t, filepath.Join(dir, "cedar", "widgets.cedar"), `forbid (principal, action == k8s::admission::Action::"delete", resource is com::example::toys::v1::Widget);`)
	w.Reload()
	if _, ok := w.Current().Engine.Lookup("widgets"); ok {
		t.Fatal("a file about an unknown kind was loaded")
	}
	if _, ok := w.Current().Engine.Lookup("pods"); !ok {
		t.Fatal("the last good set was lost")
	}
	widget := apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.toys.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "toys.example.com", Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Schema: &apiextensionsv1.CustomResourceValidation{
				OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}}}}
	if skipped, err := cedar.UseCustomKinds([]apiextensionsv1.CustomResourceDefinition{widget}); err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	w.Reload()
	if _, ok := w.Current().Engine.Lookup("widgets"); !ok {
		t.Fatal("the file was not loaded once its kind was known")
	}
}

// TestCedarPolicyAboutACustomKind: a Policy naming a CRD's kind is refused (webhook and status) while the schema
// does not know the kind, starts deciding once the CRD is given to the schema (as serve does when its CRD
// informer syncs), and its DELETE rule names the CRD's group and kind.
func TestCedarPolicyAboutACustomKind(t *testing.T) {
	ctx := context.Background()
	file, err := config.Parse(nil, newEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	pol := cedarPolicy("protected-gadgets", `@id("protected") @message("this Gadget is protected")
forbid (principal, action == k8s::admission::Action::"delete", resource is com::example::toys::v2::Gadget)
when { resource has spec && resource.spec.protected };`)
	res := config.Resources{Policies: []v1alpha1.Policy{pol}}
	t.Cleanup(func() {
		if _, err := cedar.UseCustomKinds(nil); err != nil {
			t.Error(err)
		}
	})

	before := config.Overlay(ctx, librarySources(t), file, nil, res)
	const unknown = "unrecognized entity type `com::example::toys::v2::Gadget`"
	if st := before.Resources["Policy/protected-gadgets"]; st.Valid || !strings.Contains(st.Message, unknown) {
		t.Fatalf("status before the CRD: %+v", st)
	}
	if err := config.ValidatePolicy(ctx, librarySources(t), before, before.Engine, &pol); err == nil || !strings.Contains(err.Error(), unknown) {
		t.Fatalf("webhook before the CRD: %v", err)
	}

	gadget := apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "gadgets.toys.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "toys.example.com", Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Gadget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v2", Served: true, Schema: &apiextensionsv1.CustomResourceValidation{
				OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"spec": {Type: "object", Required: []string{"protected"}, Properties: map[string]apiextensionsv1.JSONSchemaProps{"protected": {Type: "boolean"}}},
				}}}}}}}
	if skipped, err := cedar.UseCustomKinds([]apiextensionsv1.CustomResourceDefinition{gadget}); err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	after := config.Overlay(ctx, librarySources(t), file, before, res)
	if st := after.Resources["Policy/protected-gadgets"]; !st.Valid {
		t.Fatalf("status after the CRD: %+v", st)
	}
	if err := config.ValidatePolicy(ctx, librarySources(t), after, after.Engine, &pol); err != nil {
		t.Fatalf("webhook after the CRD: %v", err)
	}
	if kinds := after.OperationKinds(nil)["DELETE"]; len(kinds) != 1 || kinds[0] != "toys.example.com/Gadget" {
		t.Fatalf("DELETE kinds %v", kinds)
	}
	in := policies.Input{Request: policies.Request{UID: "u", Operation: "DELETE", Group: "toys.example.com", Version: "v2", Kind: "Gadget", Name: "g", Namespace: "default", Username: "alice"},
		OldResource: map[string]any{"apiVersion": "toys.example.com/v2", "kind": "Gadget", "metadata": map[string]any{"name": "g"}, "spec": map[string]any{"protected": true}}}
	p, ok := after.Engine.Lookup("protected-gadgets")
	if !ok {
		t.Fatal("the policy is not in the engine")
	}
	doc, err := policies.NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := p.Evaluator().Evaluate(ctx, doc, after.Policies["protected-gadgets"])
	if err != nil || len(findings) != 1 || findings[0].Message != "this Gadget is protected" {
		t.Fatalf("findings %+v, error %v", findings, err)
	}
}
