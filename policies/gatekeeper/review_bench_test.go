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
