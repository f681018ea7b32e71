package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/e2e/harness"
)

// gatekeeperConstraints are the constraints TestGatekeeperConstraintsInTheWebhook serves: Pods in production
// namespaces (namespaceSelector, judged on the live namespace's labels) need an owner label; Pods anywhere should
// have an app label (warn).
const gatekeeperConstraints = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: AttestRequiredLabels
metadata:
  name: production-pods-have-owner
spec:
  match:
    kinds: [{apiGroups: [""], kinds: [Pod]}]
    namespaceSelector: {matchLabels: {environment: production}}
  parameters:
    labels: [{key: owner}]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: AttestRequiredLabels
metadata:
  name: pods-should-have-app
spec:
  enforcementAction: warn
  match:
    kinds: [{apiGroups: [""], kinds: [Pod]}]
  parameters:
    labels: [{key: app}]
`

// TestGatekeeperConstraintsInTheWebhook: an ATTEST started with --gatekeeper (a Rego template with a library and
// two constraints) decides admissions with them beside its own policies: namespaceSelector matches the labels
// the webhook's namespace cache reads from the API server, an enforced constraint denies with the template's
// message naming <Kind>/<name>, a warn constraint admits with a warning.
func TestGatekeeperConstraintsInTheWebhook(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	dir := t.TempDir()
	template, err := os.ReadFile(filepath.Join("..", "policies", "gatekeeper", "testdata", "requiredlabels", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), template, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "constraints.yaml"), []byte(gatekeeperConstraints), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := labelledNamespace(t, "e2e-gk-production", map[string]string{"environment": "production"})
	dev := labelledNamespace(t, "e2e-gk-development", map[string]string{"environment": "development"})
	replica, err := cluster.StartReplica(ctx, harness.ReplicaOptions{Name: "gatekeeper", Args: []string{"--gatekeeper=" + dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	if err := replica.WaitReady(ctx, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	ca, _, err := cluster.CABundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const denial = `[AttestRequiredLabels/production-pods-have-owner]: Pod web must have the labels {"owner"}`
	const warning = `audit: [AttestRequiredLabels/pods-should-have-app]: Pod web must have the labels {"app"}`
	eventually(t, 30*time.Second, func() error {
		resp, err := review(ctx, ca, replica.Port, prod, pod(prod, "web", container("app", trustedImage, false)))
		if err != nil {
			return err
		}
		if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, denial) {
			return fmt.Errorf("a Pod without owner in %s: allowed %v, %+v", prod, resp.Allowed, resp.Result)
		}
		resp, err = review(ctx, ca, replica.Port, dev, pod(dev, "web", container("app", trustedImage, false)))
		if err != nil {
			return err
		}
		if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), warning) {
			return fmt.Errorf("a Pod without owner in %s (not production): allowed %v, warnings %q, %+v", dev, resp.Allowed, resp.Warnings, resp.Result)
		}
		return nil
	})
}
