package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/e2e/harness"
)

// guardLabel scopes no-privileged in the restart test: it applies only in namespaces labelled so, which ATTEST
// knows from its namespace cache alone.
const guardLabel = "e2e.attest.continuu.ms/guard"

// restartConfig scopes no-privileged by namespace label, so that a namespace's label decides an admission.
const restartConfig = `
exemptions:
  annotationGroups: [break-glass]
policies:
  - name: no-privileged
    enforcement: strict
    match:
      namespaceSelector: {matchLabels: {` + guardLabel + `: "on"}}
  - name: trusted-registries
    enforcement: strict
    parameters:
      trusted_registries: [registry.example.com/trusted, docker.io/library]
`

// labelledNamespace creates a namespace with labels for one test and deletes it afterwards.
func labelledNamespace(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	_, err := cluster.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// dryRun reports whether a server dry run of manifest is admitted, and what kubectl printed.
func dryRun(t *testing.T, manifest string) (bool, string) {
	t.Helper()
	out, errOut, ok := kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-")
	return ok, out + errOut
}

func admitted(t *testing.T, manifest string) error {
	if ok, out := dryRun(t, manifest); !ok {
		return fmt.Errorf("not admitted: %s", out)
	}
	return nil
}

func deniedBy(t *testing.T, manifest, policy string) error {
	if ok, out := dryRun(t, manifest); ok || !strings.Contains(out, denied+"["+policy+"]") {
		return fmt.Errorf("not denied by [%s]: %s", policy, out)
	}
	return nil
}

// exception creates a PolicyException for Deployment web in ns as the requester and approves it as the approver.
func exception(t *testing.T, ns, name string) {
	t.Helper()
	if out, errOut, ok := kubectlAs(t, requester, nil, policyException(ns, name, time.Now().Add(7*24*time.Hour)), "apply", "-f", "-"); !ok {
		t.Fatalf("create exception %s/%s: %s%s", ns, name, out, errOut)
	}
	approve := []string{"annotate", "policyexception", name, "-n", ns, "policy.attest.continuu.ms/approve=reviewed SEC-1234"}
	if out, errOut, ok := kubectlAs(t, approver, []string{"security-team"}, "", approve...); !ok {
		t.Fatalf("approve exception %s/%s: %s%s", ns, name, out, errOut)
	}
}

// recovered polls check until it passes and returns how long that took.
func recovered(t *testing.T, what string, since time.Time, check func() error) time.Duration {
	t.Helper()
	eventually(t, 90*time.Second, check)
	d := time.Since(since).Round(100 * time.Millisecond)
	t.Logf("%s: works %s after the API server was back", what, d)
	return d
}

// TestAPIServerRestart restarts kube-apiserver while ATTEST serves. ATTEST's caches (namespaces, PolicyExceptions
// and owners, Policy and PolicyConfig resources) keep what they held, so the running ATTEST stays ready and what
// was there before is still applied; once the API server is back its informers relist and rewatch, so a namespace,
// an exception and a PolicyConfig created after the restart each decide an admission. A replica started while the
// API server is down says on /readyz which caches are not synced, and is ready once they are.
func TestAPIServerRestart(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	setConfig(t, restartConfig)
	before := labelledNamespace(t, "e2e-restart-before", map[string]string{guardLabel: "on"})
	open := namespace(t, "e2e-restart-open")
	grantExceptions(t, before)
	eventually(t, 30*time.Second, func() error {
		if err := deniedBy(t, privilegedPod(before, "probe"), "no-privileged"); err != nil {
			return fmt.Errorf("the scoped config is not in force yet: %w", err)
		}
		return admitted(t, privilegedPod(open, "probe"))
	})
	if out, errOut, ok := kubectl(t, policyConfigManifest("restart-before", "registry.before.example"), "apply", "-f", "-"); !ok {
		t.Fatalf("apply PolicyConfig: %s%s", out, errOut)
	}
	t.Cleanup(func() {
		kubectl(t, "", "delete", "policyconfig", "restart-before", "restart-after", "--ignore-not-found")
	})
	exception(t, before, "before")
	webBefore := deployment(before, "web", 1, container("app", trustedImage, true))
	beforeImage := pod(open, "before-registry", container("app", "registry.before.example/app:1", false))
	eventually(t, 30*time.Second, func() error {
		if err := admitted(t, webBefore); err != nil {
			return fmt.Errorf("exception before the restart: %w", err)
		}
		return admitted(t, beforeImage)
	})

	// The API server goes away.
	down := time.Now()
	killed, err := cluster.StopAPIServer(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	how := "exited on SIGTERM"
	if killed {
		how = "still draining its watches 5 s after SIGTERM, so killed"
	}
	t.Logf("kube-apiserver stopped (%s) in %s", how, time.Since(down).Round(100*time.Millisecond))
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := cluster.StartAPIServer(ctx); err != nil {
				t.Errorf("bring the API server back: %v", err)
			}
		}
	})
	replica, err := cluster.StartReplica(ctx, harness.ReplicaOptions{Name: "started-while-down"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Stop)
	// Readiness while the API server is down, for 5 s: the running ATTEST keeps serving what its caches hold; the
	// replica that never synced says which caches it lacks.
	var runningCodes, replicaCodes []int
	var replicaSays string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		code, _, err := cluster.AttestReadyz(ctx)
		if err != nil {
			t.Fatalf("the running ATTEST's /readyz: %v", err)
		}
		runningCodes = append(runningCodes, code)
		if code, body, err := replica.Readyz(ctx); err == nil {
			replicaCodes = append(replicaCodes, code)
			replicaSays = body
		}
	}
	for _, code := range runningCodes {
		if code != http.StatusOK {
			t.Errorf("the running ATTEST's /readyz answered %d while the API server was down, want 200 (its caches stay synced): %v", code, runningCodes)
			break
		}
	}
	if len(replicaCodes) == 0 {
		t.Fatalf("the replica started while the API server was down never answered /readyz:\n%s", replica.Output())
	}
	for _, code := range replicaCodes {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("the replica's /readyz answered %d before it could sync, want 503: %v", code, replicaCodes)
		}
	}
	for _, want := range []string{"namespace cache not synced", "exemptions:", "policy resources:"} {
		if !strings.Contains(replicaSays, want) {
			t.Errorf("the replica's /readyz does not name what is not synced (%q):\n%s", want, replicaSays)
		}
	}
	t.Logf("while the API server was down: the running ATTEST's /readyz %v; the new replica's %v, saying:\n%s", runningCodes, replicaCodes, strings.TrimSpace(replicaSays))

	starting := time.Now()
	if err := cluster.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	t.Logf("kube-apiserver down for %s in all, ready %s after it was started again", back.Sub(down).Round(100*time.Millisecond), back.Sub(starting).Round(100*time.Millisecond))
	if err := replica.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("the replica started while it was down: ready %s after the API server was back", time.Since(back).Round(100*time.Millisecond))

	// What the caches held before the restart still decides.
	if err := deniedBy(t, privilegedPod(before, "still-guarded"), "no-privileged"); err != nil {
		t.Errorf("namespace label from before the restart: %v", err)
	}
	if err := admitted(t, webBefore); err != nil {
		t.Errorf("exception from before the restart: %v", err)
	}
	if err := admitted(t, beforeImage); err != nil {
		t.Errorf("PolicyConfig from before the restart: %v", err)
	}

	// What changes after the restart decides too, once the informers have rewatched.
	after := labelledNamespace(t, "e2e-restart-after", map[string]string{guardLabel: "on"})
	recovered(t, "namespace cache (a labelled namespace created after the restart)", back, func() error {
		return deniedBy(t, privilegedPod(after, "guarded"), "no-privileged")
	})
	grantExceptions(t, after)
	exception(t, after, "after")
	recovered(t, "exemptions cache (an exception created and approved after the restart)", back, func() error {
		return admitted(t, deployment(after, "web", 1, container("app", trustedImage, true)))
	})
	if err := deniedBy(t, privilegedPod(after, "web-x"), "no-privileged"); err != nil {
		t.Errorf("a Pod the exception does not cover: %v", err)
	}
	if out, errOut, ok := kubectl(t, policyConfigManifest("restart-after", "registry.after.example"), "apply", "-f", "-"); !ok {
		t.Fatalf("apply PolicyConfig: %s%s", out, errOut)
	}
	recovered(t, "policy resources cache (a PolicyConfig created after the restart)", back, func() error {
		return admitted(t, pod(open, "after-registry", container("app", "registry.after.example/app:1", false)))
	})

	// The replica that started while the API server was down decides from its synced caches too.
	ca, _, err := cluster.CABundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		resp, err := review(ctx, ca, replica.Port, after, privilegedPod(after, "direct"))
		if err != nil {
			return err
		}
		if resp.Allowed || !strings.Contains(resp.Result.Message, "[no-privileged]") {
			return fmt.Errorf("the replica did not deny a privileged Pod in %s by its label: %+v", after, resp.Result)
		}
		resp, err = review(ctx, ca, replica.Port, after, deployment(after, "web", 1, container("app", trustedImage, true)))
		if err != nil {
			return err
		}
		if !resp.Allowed {
			return fmt.Errorf("the replica did not apply the exception created after the restart: %+v", resp.Result)
		}
		return nil
	})
}

// review sends a CREATE of manifest in ns straight to an ATTEST's /validate, as the API server would.
func review(ctx context.Context, ca []byte, port int, ns, manifest string) (*admissionv1.AdmissionResponse, error) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		return nil, err
	}
	group, version, _ := strings.Cut(obj["apiVersion"].(string), "/")
	if version == "" {
		group, version = "", group
	}
	kind := obj["kind"].(string)
	name := obj["metadata"].(map[string]any)["name"]
	body, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "e2e-direct", "kind": map[string]any{"group": group, "version": version, "kind": kind},
			"resource":  map[string]any{"group": group, "version": version, "resource": strings.ToLower(kind) + "s"},
			"namespace": ns, "name": name, "operation": "CREATE",
			"userInfo": map[string]any{"username": "attest-e2e-admin", "groups": []any{"system:masters"}},
			"object":   obj},
	})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: harness.WebhookHost, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("https://127.0.0.1:%d/validate", port), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &rv); err != nil || rv.Response == nil {
		return nil, fmt.Errorf("HTTP %d, not an AdmissionReview: %s", resp.StatusCode, out)
	}
	if rv.Response.Result == nil {
		rv.Response.Result = &metav1.Status{}
	}
	return rv.Response, nil
}
