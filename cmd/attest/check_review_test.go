//go:build !lean

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReviewInput(t *testing.T) {
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web"}}
	review := func(req any) map[string]any {
		return map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
	}
	base := func(edit func(map[string]any)) map[string]any {
		r := map[string]any{
			"uid": "u1", "operation": "UPDATE", "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
			"namespace": "shop", "userInfo": map[string]any{"username": "alice", "groups": []any{"dev"}},
			"object": pod, "oldObject": pod, "dryRun": true,
		}
		if edit != nil {
			edit(r)
		}
		return review(r)
	}
	now := time.Unix(100, 0)
	who := requester{user: "cli", groups: []string{"cli-group"}}
	in, err := reviewInput(base(nil), now, who)
	if err != nil {
		t.Fatal(err)
	}
	r := in.Request
	if r.Operation != "UPDATE" || r.Kind != "Pod" || r.Version != "v1" || r.Namespace != "shop" || r.Name != "web" || r.UID != "u1" ||
		r.Username != "alice" || len(r.Groups) != 1 || r.Groups[0] != "dev" || !r.DryRun || in.OldObject == nil || r.TimestampNS != now.UnixNano() {
		t.Fatalf("request %+v, old object %v", r, in.OldObject)
	}
	in, err = reviewInput(base(func(m map[string]any) { delete(m, "userInfo") }), now, who)
	if err != nil || in.Request.Username != "cli" || in.Request.Groups[0] != "cli-group" {
		t.Fatalf("without userInfo, --as decides: %+v %v", in.Request, err)
	}
	in, err = reviewInput(base(func(m map[string]any) {
		delete(m, "kind")
		m["object"] = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web"}}
	}), now, who)
	if err != nil || in.Request.Group != "apps" || in.Request.Version != "v1" || in.Request.Kind != "Deployment" {
		t.Fatalf("without request.kind, the object's kind is the request's (as gator reads it): %+v %v", in.Request, err)
	}
	in, err = reviewInput(base(func(m map[string]any) { m["operation"] = "DELETE"; delete(m, "object") }), now, who)
	if err != nil || in.Object != nil || in.OldObject == nil {
		t.Fatalf("a DELETE carries the old object only: %v", err)
	}
	for _, tc := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"no request", review(nil), "request: missing"},
		{"bad operation", base(func(m map[string]any) { m["operation"] = "PATCH" }), `request.operation: "PATCH"`},
		{"no kind, no object", base(func(m map[string]any) { delete(m, "kind"); delete(m, "object"); delete(m, "oldObject") }), "request.kind: missing, and no object"},
		{"no kind, object without one", base(func(m map[string]any) { delete(m, "kind"); m["object"] = map[string]any{}; delete(m, "oldObject") }), "the object names no apiVersion and kind"},
		{"kind not an object", base(func(m map[string]any) { m["kind"] = "Pod" }), "request.kind: want an object"},
		{"kind without version", base(func(m map[string]any) { m["kind"] = map[string]any{"kind": "Pod"} }), "request.kind: version and kind are required"},
		{"name not a string", base(func(m map[string]any) { m["name"] = 3.0 }), "request.name: want a string"},
		{"groups not a list", base(func(m map[string]any) { m["userInfo"] = map[string]any{"groups": "dev"} }), "request.userInfo.groups: want a list"},
		{"group not a string", base(func(m map[string]any) { m["userInfo"] = map[string]any{"groups": []any{1.0}} }), "request.userInfo.groups[0]"},
		{"dryRun not a boolean", base(func(m map[string]any) { m["dryRun"] = "yes" }), "request.dryRun: want a boolean"},
		{"object not an object", base(func(m map[string]any) { m["object"] = "x" }), "request.object: want an object"},
		{"create without object", base(func(m map[string]any) { m["operation"] = "CREATE"; delete(m, "object") }), "request.object: required for create"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reviewInput(tc.doc, now, who); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckAdmissionReview: `attest policy check` judges an AdmissionReview as its request: its user (not --as),
// its operation and old object, and a Gatekeeper template sees them in input.review, as gator does.
func TestCheckAdmissionReview(t *testing.T) {
	dir := filepath.Join("testdata", "review")
	out, _, code := attest(t, "", "policy", "check", "-f", filepath.Join(dir, "template.yaml"), "-f", filepath.Join(dir, "review-update.yaml"), "--as", "someone-else")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"[no-privileged] spec.containers[0] (app): privileged containers are not allowed",
		"[AttestRequestCheck/who]: UPDATE by alice in shop",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {operation: PATCH}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "check", "-f", bad)
	if code == 0 || !strings.Contains(out+errOut, `bad.yaml:1: AdmissionReview: request.operation: "PATCH"`) {
		t.Fatalf("a bad AdmissionReview: exit %d\n%s%s", code, out, errOut)
	}
}

// FuzzReviewInput: any JSON document is read as an AdmissionReview without a panic, and an input it accepts has
// a known operation and a kind.
func FuzzReviewInput(f *testing.F) {
	f.Add(`{"request": {"operation": "CREATE", "kind": {"version": "v1", "kind": "Pod"}, "object": {"metadata": {"name": "a"}}}}`)
	f.Add(`{"request": {"operation": "DELETE", "kind": {"version": "v1", "kind": "Pod"}, "oldObject": {}, "userInfo": {"groups": ["a", 1]}}}`)
	f.Add(`{"request": []}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var obj map[string]any
		if err := json.Unmarshal([]byte(doc), &obj); err != nil {
			return
		}
		in, err := reviewInput(obj, time.Unix(0, 0), requester{})
		if err != nil {
			return
		}
		switch in.Request.Operation {
		case "CREATE", "UPDATE", "DELETE", "CONNECT":
		default:
			t.Fatalf("accepted operation %q", in.Request.Operation)
		}
		if in.Request.Kind == "" {
			t.Fatalf("accepted a request without a kind: %s", doc)
		}
	})
}
