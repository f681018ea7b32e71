package admission_test

import (
	"context"
	"testing"

	. "github.com/continuums/attest/admission/admissiontest"
)

// verifiedDeployment is a 3-container Deployment (an init container and two containers) of signed and attested
// images of the environment's registry, by tag.
func verifiedDeployment(b *testing.B, env *verifyEnv) map[string]any {
	b.Helper()
	for _, repo := range []string{"team/migrate", "team/app", "team/proxy"} {
		env.signed(b, repo, "1.0")
	}
	return Object(Deployment, "shop", "web", PodSpec{
		Init: []Container{NewContainer("migrate", env.reg.Tagged("team/migrate", "1.0"))},
		Containers: []Container{
			NewContainer("app", env.reg.Tagged("team/app", "1.0")),
			NewContainer("proxy", env.reg.Tagged("team/proxy", "1.0")),
		},
	})
}

// BenchmarkValidateVerified is a warm admission through Evaluate: three images whose tags and verdicts are cached,
// judged by no-privileged and require-attestation with the real verifier. Compare BenchmarkValidate (no verifier).
func BenchmarkValidateVerified(b *testing.B) {
	env := newVerifyEnv(b, withPolicies("no-privileged", "require-attestation"))
	in := Create(verifiedDeployment(b, env))
	ctx := context.Background()
	if d := env.ev.Evaluate(ctx, in); !d.Allowed {
		b.Fatalf("fixture denied: %s", d.Message)
	}
	requests := env.reg.Requests()
	b.ReportAllocs()
	for b.Loop() {
		env.ev.Evaluate(ctx, in)
	}
	if env.reg.Requests() != requests {
		b.Fatalf("warm admissions made %d registry requests", env.reg.Requests()-requests)
	}
}

// BenchmarkMutateVerified is the mutating path on the same warm Deployment: receipt computed, nothing re-verified.
func BenchmarkMutateVerified(b *testing.B) {
	env := newVerifyEnv(b, withPolicies("no-privileged", "require-attestation"))
	in := Create(verifiedDeployment(b, env))
	ctx := context.Background()
	if d := env.ev.Mutate(ctx, in); len(d.Patches) != 1 {
		b.Fatalf("fixture patches: %v", d.Patches)
	}
	b.ReportAllocs()
	for b.Loop() {
		env.ev.Mutate(ctx, in)
	}
}
