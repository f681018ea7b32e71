package admission_test

import (
	"context"
	"testing"

	. "github.com/continuums/attest/admission/admissiontest"
)

// BenchmarkValidate is one admission of a 3-container Deployment through every shipped policy.
func BenchmarkValidate(b *testing.B) {
	ev := Evaluator(b, TrustedConfig, "")
	obj := Object(Deployment, "shop", "web", PodSpec{
		Init: []Container{NewContainer("migrate", "gcr.io/company/migrate:1.4")},
		Containers: []Container{
			NewContainer("app", "gcr.io/company/app:2.1"),
			NewContainer("proxy", "nginx:1.27"),
		},
	})
	in := Create(obj)
	ctx := context.Background()
	if d := ev.Evaluate(ctx, in); !d.Allowed {
		b.Fatalf("fixture denied: %s", d.Message)
	}
	b.ReportAllocs()
	for b.Loop() {
		ev.Evaluate(ctx, in)
	}
}
