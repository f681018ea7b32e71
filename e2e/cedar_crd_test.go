package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/e2e/harness"
)

// vaultCRD is a custom resource of the e2e suite's own: Vaults, with spec.protected.
const vaultCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: vaults.e2e.example.com
spec:
  group: e2e.example.com
  scope: Namespaced
  names: {plural: vaults, singular: vault, kind: Vault, listKind: VaultList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [owner]
            properties:
              owner: {type: string}
              protected: {type: boolean}
`

func vaultPolicy(name, condition string) string {
	return cedarPolicyResource(name, `@message("this Vault is protected: set spec.protected to false first")
forbid (principal, action == k8s::admission::Action::"delete", resource is com::example::e2e::v1::Vault)
when { `+condition+` };`)
}

func vault(ns, name string, protected bool) string {
	return fmt.Sprintf("apiVersion: e2e.example.com/v1\nkind: Vault\nmetadata: {name: %s, namespace: %s}\nspec: {owner: team-a, protected: %v}\n", name, ns, protected)
}

// TestCedarCustomKinds: a Cedar policy about a custom resource. ATTEST's CRD informer puts the Vault kind in the
// Cedar schema, so the Policy is accepted at kubectl apply (it is refused while the kind is unknown), a misspelt
// field is refused with the validator's message, the DELETE rule for vaults is added (discovery read again for
// the new kind), a protected Vault cannot be deleted and an unprotected one can; `attest policy cedar-schema
// --kubeconfig` prints the kind.
func TestCedarCustomKinds(t *testing.T) {
	ns := namespace(t, "cedar-crd")
	t.Cleanup(func() {
		kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "protected-vaults", "--ignore-not-found")
		kubectl(t, "", "delete", "crd", "vaults.e2e.example.com", "--ignore-not-found", "--wait=false")
	})
	// A Policy narrowing DELETE to Deployments first, so that ATTEST has read discovery before the CRD exists: it
	// must read it again for the Vault kind.
	warmUp := cedarPolicyResource("crd-warm-up", `forbid (principal, action == k8s::admission::Action::"delete", resource is apps::v1::Deployment) when { false };`)
	t.Cleanup(func() {
		kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "crd-warm-up", "--ignore-not-found")
	})
	if out, errOut, ok := kubectl(t, warmUp, "apply", "-f", "-"); !ok {
		t.Fatalf("apply the warm-up Policy: %s%s", out, errOut)
	}
	eventually(t, 30*time.Second, func() error { return deleteRuleFor("apps", "deployments") })
	if out, errOut, ok := kubectl(t, vaultCRD, "apply", "-f", "-"); !ok {
		t.Fatalf("apply the CRD: %s%s", out, errOut)
	}
	if out, errOut, ok := kubectl(t, "", "wait", "--for=condition=Established", "crd/vaults.e2e.example.com", "--timeout=60s"); !ok {
		t.Fatalf("CRD not established: %s%s", out, errOut)
	}
	// ATTEST refuses the Policy until its informer has the CRD; then accepts it.
	policy := vaultPolicy("protected-vaults", "resource has spec && resource.spec has protected && resource.spec.protected")
	eventually(t, 30*time.Second, func() error {
		if out, errOut, ok := kubectl(t, policy, "apply", "-f", "-"); !ok {
			return fmt.Errorf("the Policy about Vaults is refused: %s%s", out, errOut)
		}
		return nil
	})

	t.Run("a misspelt custom field is refused at apply with the validator's message", func(t *testing.T) {
		_, errOut, ok := kubectl(t, vaultPolicy("misspelt-vaults", "resource has spec && resource.spec.protectd"), "apply", "-f", "-")
		if ok || !strings.Contains(errOut, "attribute `spec.protectd` on entity type `com::example::e2e::v1::Vault` not found") {
			t.Fatalf("misspelt field: ok=%v %s", ok, errOut)
		}
	})

	t.Run("deleting a protected Vault is denied with the policy's message, an unprotected one is deleted", func(t *testing.T) {
		if out, errOut, ok := kubectl(t, vault(ns, "locked", true)+"---\n"+vault(ns, "open", false), "apply", "-f", "-"); !ok {
			t.Fatalf("create the Vaults: %s%s", out, errOut)
		}
		// Discovery, read again for the kind it did not know, maps it to e2e.example.com/vaults: a DELETE rule for them.
		eventually(t, 60*time.Second, func() error { return deleteRuleFor("e2e.example.com", "vaults") })
		if _, errOut, ok := kubectl(t, "", "delete", "vaults.e2e.example.com", "locked", "-n", ns, "--wait=false"); ok || !strings.Contains(errOut, "this Vault is protected: set spec.protected to false first") {
			t.Fatalf("deleting the protected Vault: ok=%v %s", ok, errOut)
		}
		if out, errOut, ok := kubectl(t, "", "delete", "vaults.e2e.example.com", "open", "-n", ns, "--wait=false"); !ok {
			t.Fatalf("deleting the unprotected Vault: %s%s", out, errOut)
		}
	})

	t.Run("creating a Vault a policy forbids is denied through the kinds webhook's rule", func(t *testing.T) {
		owners := cedarPolicyResource("vault-owners", `@message("a Vault needs a real owner")
forbid (principal, action in [k8s::admission::Action::"create", k8s::admission::Action::"update"], resource is com::example::e2e::v1::Vault)
when { resource has spec && resource.spec.owner == "nobody" };`)
		t.Cleanup(func() {
			kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "vault-owners", "--ignore-not-found")
		})
		if out, errOut, ok := kubectl(t, owners, "apply", "-f", "-"); !ok {
			t.Fatalf("apply the owners Policy: %s%s", out, errOut)
		}
		orphan := strings.Replace(vault(ns, "orphan", false), "owner: team-a", "owner: nobody", 1)
		eventually(t, 60*time.Second, func() error {
			if _, errOut, ok := kubectl(t, orphan, "apply", "--dry-run=server", "-f", "-"); ok || !strings.Contains(errOut, "a Vault needs a real owner") {
				return fmt.Errorf("a Vault owned by nobody is not denied yet: ok=%v %s", ok, errOut)
			}
			return nil
		})
		if out, errOut, ok := kubectl(t, vault(ns, "owned", false), "apply", "-f", "-"); !ok {
			t.Fatalf("a Vault with an owner: %s%s", out, errOut)
		}
	})

	t.Run("a config file's .cedar file about the custom kind loads at serve start", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "cedar"), 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"policies.yaml":           "cedar:\n  directories: [cedar]\n",
			"cedar/vault-files.cedar": "forbid (principal, action == k8s::admission::Action::\"delete\", resource is com::example::e2e::v1::Vault)\nwhen { resource has spec && resource.spec.owner == \"nobody\" };\n",
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// Validated when the file loads, before the CRD informer runs: serve reads the cluster's CRDs first (a
		// replica without that exits with "unrecognized entity type").
		replica, err := cluster.StartReplica(context.Background(), harness.ReplicaOptions{Name: "cedar-crd-file",
			Args: []string{"--config=" + filepath.Join(dir, "policies.yaml"), "--manage-webhook-rules=false"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(replica.Stop)
		if err := replica.WaitReady(context.Background(), 60*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("attest policy check --cluster validates a config's Cedar about the custom kind with the cluster's CRDs", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "cedar"), 0o755); err != nil {
			t.Fatal(err)
		}
		check := func(condition string) (string, string, bool) {
			for name, text := range map[string]string{
				"policies.yaml":           "cedar:\n  directories: [cedar]\n",
				"cedar/vault-check.cedar": "forbid (principal, action == k8s::admission::Action::\"delete\", resource is com::example::e2e::v1::Vault)\nwhen { " + condition + " };\n",
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return attestCLI(t, cluster.Kubeconfig, "policy", "check", "--cluster", "-n", ns, "--offline", "--config", filepath.Join(dir, "policies.yaml"))
		}
		// The Vault's shape comes from the cluster's CRD: spec.protected is optional there, so reading it unguarded
		// is refused, and guarded it validates.
		_, errOut, ok := check("resource has spec && resource.spec.protected")
		if ok || !strings.Contains(errOut, "optional attribute `spec.protected` on entity type `com::example::e2e::v1::Vault`") {
			t.Fatalf("an unguarded optional field of the CRD's schema: ok=%v %s", ok, errOut)
		}
		if out, errOut, ok := check("resource has spec && resource.spec has protected && resource.spec.protected"); !ok {
			t.Fatalf("check --cluster with a .cedar file about Vaults: %s%s", out, errOut)
		}
	})

	t.Run("attest policy cedar-schema --kubeconfig prints the custom kind", func(t *testing.T) {
		out, errOut, ok := attestCLI(t, cluster.Kubeconfig, "policy", "cedar-schema")
		if !ok || !strings.Contains(out, "namespace com::example::e2e::v1 {\n\tentity Vault = {") || !strings.Contains(out, `"spec"?: {"owner": __cedar::String, "protected"?: __cedar::Bool}`) {
			t.Fatalf("cedar-schema: ok=%v\n%s\n%s", ok, errOut, out[:min(len(out), 2000)])
		}
	})
}

// deleteRuleFor is nil once ATTEST's validating webhook has a DELETE rule for group/resource.
func deleteRuleFor(group, resource string) error {
	vwc, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), harness.LocalWebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, r := range vwc.Webhooks[0].Rules {
		if slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}) &&
			slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			return nil
		}
	}
	return fmt.Errorf("no DELETE rule for %s/%s yet: %+v", group, resource, vwc.Webhooks[0].Rules)
}
