package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func policyConfigManifest(name, registry string) string {
	return fmt.Sprintf(`apiVersion: policy.attest.continuu.ms/v1alpha1
kind: PolicyConfig
metadata: {name: %s}
spec:
  policy: trusted-registries
  parameters:
    trusted_registries: [%q]
`, name, registry)
}

// TestPolicyConfigsFromTwoTeamsAreMerged: each team contributes its registry; both are honoured, and deleting one
// PolicyConfig removes only its entries, without a restart.
func TestPolicyConfigsFromTwoTeamsAreMerged(t *testing.T) {
	ns := namespace(t, "e2e-policyconfig")
	teamA := pod(ns, "a", container("app", "registry.team-a.example/app:1", false))
	teamB := pod(ns, "b", container("app", "registry.team-b.example/app:1", false))
	for _, m := range []string{teamA, teamB} {
		if _, errOut, ok := kubectl(t, m, "apply", "--dry-run=server", "-f", "-"); ok || !strings.Contains(errOut, "[trusted-registries]") {
			t.Fatalf("image admitted before any PolicyConfig: %s", errOut)
		}
	}
	for name, registry := range map[string]string{"team-a": "registry.team-a.example", "team-b": "registry.team-b.example"} {
		if out, errOut, ok := kubectl(t, policyConfigManifest(name, registry), "apply", "-f", "-"); !ok {
			t.Fatalf("apply PolicyConfig %s: %s%s", name, out, errOut)
		}
		t.Cleanup(func() { kubectl(t, "", "delete", "policyconfig", name, "--ignore-not-found") })
	}
	eventually(t, 15*time.Second, func() error {
		for _, m := range []string{teamA, teamB} {
			if _, errOut, ok := kubectl(t, m, "apply", "--dry-run=server", "-f", "-"); !ok {
				return fmt.Errorf("a team's registry is not trusted yet: %s", errOut)
			}
		}
		return nil
	})
	out, _, _ := kubectl(t, "", "get", "policyconfig", "team-a", "-o", "jsonpath={.status.valid}")
	if out != "true" {
		t.Fatalf("PolicyConfig team-a status.valid = %q", out)
	}
	if _, errOut, ok := kubectl(t, "", "delete", "policyconfig", "team-b"); !ok {
		t.Fatal(errOut)
	}
	eventually(t, 15*time.Second, func() error {
		if _, _, ok := kubectl(t, teamB, "apply", "--dry-run=server", "-f", "-"); ok {
			return fmt.Errorf("team-b's registry is still trusted after its PolicyConfig was deleted")
		}
		if _, errOut, ok := kubectl(t, teamA, "apply", "--dry-run=server", "-f", "-"); !ok {
			return fmt.Errorf("team-a's registry was dropped with team-b's: %s", errOut)
		}
		return nil
	})
}

// TestBadPolicyResourcesAreRejectedAtApply: what ATTEST could not use never gets in, and says why.
func TestBadPolicyResourcesAreRejectedAtApply(t *testing.T) {
	tests := []struct{ name, manifest, want string }{
		{"impure Rego", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: Policy
metadata: {name: phone-home}
spec:
  rego: |
    package attest.phone_home
    import rego.v1
    violation contains "x" if {
      http.send({"method": "get", "url": "http://example.com"})
    }
`, "http.send is not allowed in ATTEST policies"},
		{"Rego that does not compile", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: Policy
metadata: {name: broken}
spec:
  rego: |
    package attest.broken
    violation[msg] {
      msg :=
    }
`, "spec.rego: "},
		{"wrong parameter type", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: PolicyConfig
metadata: {name: wrong-type}
spec:
  policy: trusted-registries
  parameters: {trusted_registries: "gcr.io/company"}
`, "spec.parameters.trusted_registries: got string, want array"},
		{"unknown policy", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: Policy
metadata: {name: no-such-policy}
spec: {mode: enforce}
`, `unknown policy "no-such-policy"`},
		{"unknown mode", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: Policy
metadata: {name: no-privileged}
spec: {mode: sometimes}
`, `spec.mode: Unsupported value: "sometimes"`},
		{"mutate without a patch rule", `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: Policy
metadata: {name: no-privileged}
spec: {mode: enforce, mutate: true}
`, "policy no-privileged has no patch rule, so it cannot mutate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, ok := kubectl(t, tt.manifest, "apply", "-f", "-")
			if ok || !strings.Contains(errOut, tt.want) {
				t.Fatalf("ok=%v, kubectl printed:\n%s%s\nwant it to contain %q", ok, out, errOut, tt.want)
			}
		})
	}
}
