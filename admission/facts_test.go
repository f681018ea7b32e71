package admission_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	. "github.com/continuums/attest/admission/admissiontest"
)

// TestVerifiedAdmissionsConcurrently admits the same verified Deployment from several goroutines at once, after
// a first admission cached its verdicts: every admission shares the cached verdicts' attestations, converted once
// (run with -race), and decides exactly as the first.
func TestVerifiedAdmissionsConcurrently(t *testing.T) {
	env := newVerifyEnv(t, withPolicies("no-privileged", "require-attestation"))
	for _, repo := range []string{"team/migrate", "team/app", "team/proxy"} {
		d := env.reg.PushRandomImage(t, repo, "1.0")
		env.key.Sign(t, d)
		env.key.Attest(t, d, slsa, map[string]any{"builder": map[string]any{"id": "https://github.com/company/builder"}, "n": 3.5})
	}
	in := Create(Object(Deployment, "shop", "web", PodSpec{
		Init: []Container{NewContainer("migrate", env.reg.Tagged("team/migrate", "1.0"))},
		Containers: []Container{
			NewContainer("app", env.reg.Tagged("team/app", "1.0")),
			NewContainer("proxy", env.reg.Tagged("team/proxy", "1.0")),
		},
	}))
	ctx := context.Background()
	first := env.ev.Evaluate(ctx, in)
	if !first.Allowed {
		t.Fatalf("denied: %s", first.Message)
	}
	requests := env.reg.Requests()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				d := env.ev.Evaluate(ctx, in)
				if d.Allowed != first.Allowed || !reflect.DeepEqual(d.Warnings, first.Warnings) || len(d.Results) != len(first.Results) {
					t.Errorf("a concurrent admission decided %+v, the first %+v", d, first)
					return
				}
			}
		})
	}
	wg.Wait()
	if env.reg.Requests() != requests {
		t.Fatalf("warm admissions made %d registry requests", env.reg.Requests()-requests)
	}
}
