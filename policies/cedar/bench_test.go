package cedar_test

import (
	"context"
	"os"
	"testing"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// BenchmarkCedar evaluates the example policy set (examples/cedar, the reference's decision matrix) on one
// Deployment admission in a production namespace, as the pipeline does once per request: "decide" builds the
// entities and authorizes; compare with BenchmarkLibrary's per-request figures (policies/library_bench_test.go).
func BenchmarkCedar(b *testing.B) {
	text, err := os.ReadFile("../../examples/cedar/production.cedar")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cedar.SchemaText(); err != nil { // built once per process, at the first policy load
		b.Fatal(err)
	}
	in := *input("UPDATE", "apps", "v1", "Deployment", object(deployment(3)), oldObject(deployment(2)), production,
		user("sam", "sre", "system:authenticated"), extra("amr", "mfa"))
	in.Images = map[string]map[string]any{"gcr.io/company/app:1.0": {"registry": "gcr.io", "repository": "company/app", "tag": "1.0", "trusted_registry": true,
		"signature": map[string]any{"verified": true, "signer": "release-key"}}}
	doc, err := policies.NewDocument(in)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// "matrix" reads no object field (only principal, action, type and context); "matrix+spec" adds a forbid
	// that reads the pod template, so the object's spec is converted on every request.
	const specRule = `
forbid (principal, action, resource is apps::v1::Deployment) when {
    resource has spec && resource.spec has template && resource.spec.template has spec &&
    resource.spec.template.spec has hostNetwork && resource.spec.template.spec.hostNetwork };`
	for _, run := range []struct{ name, text string }{{"matrix", string(text)}, {"matrix+spec", string(text) + specRule}} {
		s, err := cedar.Parse(cedar.Source{Name: "production.cedar", Text: run.text})
		if err != nil {
			b.Fatal(err)
		}
		p, err := cedar.NewPolicy("production", "cedar/production.cedar", s, run.text, cedar.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(run.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Eval(ctx, doc, policies.Settings{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// deployment is a 3-container Deployment like the Rego benchmark's.
func deployment(replicas int) map[string]any {
	ctr := func(name, image string) map[string]any {
		return map[string]any{"name": name, "image": image,
			"resources":       map[string]any{"limits": map[string]any{"cpu": "1", "memory": "1Gi"}},
			"securityContext": map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true}}
	}
	return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "prod", "labels": map[string]any{"app": "web"},
			"annotations": map[string]any{"attest.continuu.ms/approval-id": "CHG-1234"}},
		"spec": map[string]any{"replicas": int64(replicas), "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"initContainers": []any{ctr("migrate", "gcr.io/company/migrate:1.0")},
					"containers":     []any{ctr("app", "gcr.io/company/app:1.0"), ctr("proxy", "gcr.io/company/proxy:2.1")}}}}}
}
