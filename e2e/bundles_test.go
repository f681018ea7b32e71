package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/bundles/bundlestest"
)

// pushSignedBundle builds a bundle whose policy denies pods without a team label with message, pushes it to ref
// and signs its digest with key.
func pushSignedBundle(t *testing.T, reg *attestationtest.Registry, key *attestationtest.Signer, repoTag, message string) string {
	t.Helper()
	dir := bundlestest.WriteDir(t, map[string]string{
		".manifest":                 `{"revision": "` + message + `", "roots": ["acme"]}`,
		"acme/team_label.rego":      strings.Replace(bundlestest.TeamLabelPolicy, bundlestest.TeamLabelMessage, message, 1),
		"acme/team_label_test.rego": bundlestest.TeamLabelTest,
	})
	return bundlestest.PushSignedDir(t, reg, key, dir, repoTag).DigestStr()
}

// TestPolicySourceFromALoopbackRegistry: a PolicySource names a signed bundle in a registry on 127.0.0.1; its
// policy denies a workload; a new signed version pushed to the same tag changes the verdict without a restart; and
// `kubectl get policysources` shows the loaded digest and signer.
func TestPolicySourceFromALoopbackRegistry(t *testing.T) {
	requireLocal(t)
	ns := namespace(t, "e2e-bundles")
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	v1 := pushSignedBundle(t, reg, key, "policies/acme:prod", "workloads carry a team label (v1)")
	pemText := strings.ReplaceAll(strings.TrimSpace(key.PublicKeyPEM(t)), "\n", `\n`)
	setConfig(t, `trust:
  noMatch: allow
  policies:
    - name: policy-bundles
      images: ["`+reg.Host()+`/policies/**"]
      authorities:
        - name: policy-ci
          key: {pem: "`+pemText+`"}
policies:
  - {name: no-privileged, enforcement: strict}
`)
	source := `apiVersion: policy.attest.continuu.ms/v1alpha1
kind: PolicySource
metadata: {name: acme}
spec:
  oci: ` + reg.Tagged("policies/acme", "prod") + `
  interval: 10s
  trustPolicy: policy-bundles
`
	if out, errOut, ok := kubectl(t, source, "apply", "-f", "-"); !ok {
		t.Fatalf("apply PolicySource: %s%s", out, errOut)
	}
	t.Cleanup(func() { kubectl(t, "", "delete", "policysource", "acme", "--ignore-not-found") })
	unlabelled := pod(ns, "unlabelled", container("app", "registry.example.com/trusted/app:1", false))
	verdictSays := func(want string) func() error {
		return func() error {
			_, errOut, ok := kubectl(t, unlabelled, "apply", "--dry-run=server", "-f", "-")
			if ok {
				return fmt.Errorf("the unlabelled pod was admitted")
			}
			if !strings.Contains(errOut, want) {
				return fmt.Errorf("the denial does not say %q: %s", want, errOut)
			}
			return nil
		}
	}
	eventually(t, 60*time.Second, verdictSays("[acme-team-label] metadata.labels.team: workloads carry a team label (v1)"))

	v2 := pushSignedBundle(t, reg, key, "policies/acme:prod", "workloads carry a team label (v2)")
	eventually(t, 60*time.Second, verdictSays("workloads carry a team label (v2)"))

	eventually(t, 30*time.Second, func() error {
		out, errOut, ok := kubectl(t, "", "get", "policysources")
		if !ok {
			return fmt.Errorf("kubectl get policysources: %s", errOut)
		}
		if !strings.Contains(out, v2) || !strings.Contains(out, key.KeyID(t)) || !strings.Contains(out, "True") {
			return fmt.Errorf("kubectl get policysources does not show digest %s, signer %s and Ready True:\n%s", v2, key.KeyID(t), out)
		}
		for _, col := range []string{"NAME", "READY", "DIGEST", "SIGNER"} {
			if !strings.Contains(out, col) {
				return fmt.Errorf("no %s column:\n%s", col, out)
			}
		}
		return nil
	})
	if v1 == v2 {
		t.Fatal("the two versions have the same digest")
	}
}
