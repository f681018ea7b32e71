package gatekeeper_test

import (
	"context"
	"testing"

	"github.com/continuums/attest/policies/gatekeeper"
)

// BenchmarkReview: one object against one constraint, the per-object cost once templates are compiled.
func BenchmarkReview(b *testing.B) {
	for _, bc := range []struct{ name, template, constraint string }{
		{"rego", "requiredlabels/template.yaml", "requiredlabels/constraint.yaml"},
		{"cel", "allowedregistries/template.yaml", "allowedregistries/constraint.yaml"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := client(b, bc.template, string(readFile(b, bc.constraint)), gatekeeper.Options{})
			obj := object(b, pod("shop", "app=web", "quay.io/x/y:1", "registry.example.com/a:1"))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				rs, err := c.Review(ctx, obj)
				if err != nil || len(rs) != 1 {
					b.Fatalf("%d results, %v", len(rs), err)
				}
			}
		})
	}
}

// BenchmarkConstraintPolicy: one Deployment against one Rego constraint, through the pipeline's policy (the
// review built from the pipeline's input, once per document) and, for comparison, reviewed as gator reviews an
// object (Client.Review).
func BenchmarkConstraintPolicy(b *testing.B) {
	deployment := string(readFile(b, "requiredlabels/objects/deployment-unlabelled.yaml"))
	s := set(b, []string{"requiredlabels/template.yaml"}, string(readFile(b, "requiredlabels/constraint.yaml")))
	ps, err := s.Policies()
	if err != nil || len(ps) != 1 {
		b.Fatal(len(ps), err)
	}
	p := ps[0]
	ctx := context.Background()
	b.Run("policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			doc := document(b, deployment, "", nil)
			fs, err := p.Eval(ctx, doc, p.DefaultSettings())
			if err != nil || len(fs) != 1 {
				b.Fatalf("%v, %v", fs, err)
			}
		}
	})
	b.Run("document only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = document(b, deployment, "", nil)
		}
	})
	c := client(b, "requiredlabels/template.yaml", string(readFile(b, "requiredlabels/constraint.yaml")), gatekeeper.Options{})
	b.Run("gator review", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			obj := object(b, deployment)
			rs, err := c.Review(ctx, obj)
			if err != nil || len(rs) != 1 {
				b.Fatalf("%d results, %v", len(rs), err)
			}
		}
	})
}
