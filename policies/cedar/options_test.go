package cedar_test

import (
	"context"
	"testing"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// TestWithOptions: a set checked with the default options (a bundle's) takes the configuration's MFA key, keeping
// its name, file and digest; the same options, or a policy of another language, come back unchanged.
func TestWithOptions(t *testing.T) {
	const text = `@id("mfa") @message("MFA required")
forbid (principal, action, resource is core::v1::Pod) unless { context.mfa };`
	p, err := cedar.NewPolicy("mfa", "bundle/mfa.cedar", parse(t, text), text, cedar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Digest = "sha256:bundle/" + p.Digest
	acr := cedar.Options{MFAKey: "acr", MFAValue: "hardware"}
	q, err := cedar.WithOptions(p, acr)
	if err != nil {
		t.Fatal(err)
	}
	if q == p || q.Name != p.Name || q.File != p.File || q.Digest != p.Digest || q.Severity != p.Severity {
		t.Fatalf("rebuilt policy %+v, from %+v", q.Metadata, p.Metadata)
	}
	findings := func(p *policies.Policy, k, v string) int {
		t.Helper()
		doc, err := policies.NewDocument(*input("CREATE", "", "v1", "Pod", object(pod(false, nil)), extra(k, v)))
		if err != nil {
			t.Fatal(err)
		}
		fs, err := p.Evaluator().Evaluate(context.Background(), doc, p.DefaultSettings())
		if err != nil {
			t.Fatal(err)
		}
		return len(fs)
	}
	for _, tc := range []struct {
		name   string
		p      *policies.Policy
		k, v   string
		denied bool
	}{
		{"default options, amr=mfa", p, "amr", "mfa", false},
		{"default options, acr=hardware", p, "acr", "hardware", true},
		{"acr options, acr=hardware", q, "acr", "hardware", false},
		{"acr options, amr=mfa", q, "amr", "mfa", true},
	} {
		if got := findings(tc.p, tc.k, tc.v) > 0; got != tc.denied {
			t.Errorf("%s: denied %v, want %v", tc.name, got, tc.denied)
		}
	}
	if same, err := cedar.WithOptions(q, acr); err != nil || same != q {
		t.Errorf("the same options rebuilt the policy: %v", err)
	}
	rego, err := policies.NewPolicy(policies.Metadata{Name: "other", File: "x"}, otherEvaluator{})
	if err != nil {
		t.Fatal(err)
	}
	if same, err := cedar.WithOptions(rego, acr); err != nil || same != rego {
		t.Errorf("a policy of another language was rebuilt: %v", err)
	}
}

// otherEvaluator is a policy of another language.
type otherEvaluator struct{}

func (otherEvaluator) Engine() string { return "other" }
func (otherEvaluator) Evaluate(context.Context, *policies.Document, policies.Settings) ([]policies.Finding, error) {
	return nil, nil
}
