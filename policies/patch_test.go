package policies_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

// TestResourceLimitsPatch runs the library's one patch rule on a Deployment the way the mutating path does: the
// operations are exactly the expected JSON Patch, and the patched object passes the policy.
func TestResourceLimitsPatch(t *testing.T) {
	ctx := context.Background()
	p, _ := library(t).Lookup("resource-limits")
	s, err := p.NewSettings(policies.ModeAudit, map[string]any{"max_cpu": "2", "max_memory": "1Gi"})
	if err != nil {
		t.Fatal(err)
	}
	obj := decode(t, `{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {"name": "web", "namespace": "shop"},
		"spec": {"replicas": 2, "template": {"spec": {
			"initContainers": [{"name": "migrate", "image": "gcr.io/company/migrate:1", "resources": {"requests": {"cpu": "1"}}}],
			"containers": [
				{"name": "app", "image": "gcr.io/company/app:1"},
				{"name": "proxy", "image": "gcr.io/company/proxy:1", "resources": {"limits": {"cpu": "250m"}}}
			]
		}}}
	}`)
	ops, err := p.Patch(ctx, deploymentDoc(t, obj), s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"op":"add","path":"/spec/template/spec/containers/0/resources","value":{"limits":{"cpu":"500m","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}},` +
		`{"op":"add","path":"/spec/template/spec/containers/1/resources/limits/memory","value":"512Mi"},` +
		`{"op":"add","path":"/spec/template/spec/containers/1/resources/requests","value":{"memory":"128Mi"}},` +
		`{"op":"add","path":"/spec/template/spec/initContainers/0/resources/limits","value":{"cpu":"1","memory":"512Mi"}},` +
		`{"op":"add","path":"/spec/template/spec/initContainers/0/resources/requests/memory","value":"128Mi"}` +
		`]`
	if string(got) != want {
		t.Fatalf("patch:\n%s\nwant:\n%s", got, want)
	}
	before, err := p.Eval(ctx, deploymentDoc(t, obj), s)
	if err != nil || len(before) != 3 {
		t.Fatalf("before the patch: %d findings (%v), want 3", len(before), err)
	}
	for _, op := range ops {
		applyAdd(t, obj, op)
	}
	after, err := p.Eval(ctx, deploymentDoc(t, obj), s)
	if err != nil || len(after) != 0 {
		t.Fatalf("the patched object still violates resource-limits: %+v (%v)", after, err)
	}
	if again, err := p.Patch(ctx, deploymentDoc(t, obj), s); err != nil || len(again) != 0 {
		t.Fatalf("patching the patched object: %v (%v), want nothing", again, err)
	}
}

func TestPatchWithoutDefaultsDoesNothing(t *testing.T) {
	p, _ := library(t).Lookup("resource-limits")
	s, err := p.NewSettings(policies.ModeAudit, map[string]any{"default_limits": map[string]any{}, "default_requests": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	obj := decode(t, `{"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a"}]}}}}`)
	ops, err := p.Patch(context.Background(), deploymentDoc(t, obj), s)
	if err != nil || len(ops) != 0 {
		t.Fatalf("Patch = %v, %v; want nothing", ops, err)
	}
	if _, err := p.NewSettings(policies.ModeAudit, map[string]any{"default_limits": map[string]any{"cpu": "2 cores"}}); err == nil ||
		!strings.Contains(err.Error(), "default_limits.cpu") {
		t.Fatalf("an invalid default quantity: %v", err)
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// deploymentDoc is the input of a Deployment, its containers read from the pod template as ATTEST extracts them.
func deploymentDoc(t *testing.T, obj map[string]any) *policies.Document {
	t.Helper()
	podSpec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	var cs []policies.Container
	for _, list := range []struct{ field, typ string }{{"initContainers", "init"}, {"containers", "container"}} {
		items, _ := podSpec[list.field].([]any)
		for i, item := range items {
			fields := item.(map[string]any)
			path := "spec.template.spec." + list.field + "[" + strconv.Itoa(i) + "]"
			cs = append(cs, policies.Container{Path: path, PodPath: "spec.template.spec", Type: list.typ, Name: fields["name"].(string), Image: fields["image"].(string), Fields: fields})
		}
	}
	doc, err := policies.NewDocument(policies.Input{
		Request:    policies.Request{Operation: "CREATE", Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
		Resource:   obj,
		Namespace:  policies.Namespace{Name: "shop"},
		Containers: cs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// applyAdd applies one "add" operation whose parent exists, which is all the library's patch rules produce.
func applyAdd(t *testing.T, obj map[string]any, op policies.PatchOp) {
	t.Helper()
	if op.Op != "add" {
		t.Fatalf("unexpected op %s", op.Op)
	}
	segs := strings.Split(op.Path, "/")[1:]
	var cur any = obj
	for _, seg := range segs[:len(segs)-1] {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i >= len(c) {
				t.Fatalf("%s: bad index %q", op.Path, seg)
			}
			cur = c[i]
		}
	}
	parent, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("%s: parent is %T, not an object", op.Path, cur)
	}
	// A value from the patch is shared with nothing else in the object, but copy it anyway: the test should not
	// depend on that.
	b, _ := json.Marshal(op.Value)
	var v any
	_ = json.Unmarshal(b, &v)
	if v == nil {
		t.Fatalf("%s: null value", op.Path)
	}
	parent[strings.NewReplacer("~1", "/", "~0", "~").Replace(segs[len(segs)-1])] = v
}
