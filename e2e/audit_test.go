package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/e2e/harness"
)

// auditConfig is the whole config of the audit test (setConfig's quiet list would name disallow-latest-tag twice):
// disallow-latest-tag as the policy being rolled out, extra the trusted entry each step changes so that the
// audit runs (a change of the policies' settings starts one at once).
func auditConfig(latestTag, extra string) string {
	return fmt.Sprintf(`policies:
  - name: no-privileged
    enforcement: strict
  - name: trusted-registries
    enforcement: strict
    parameters:
      trusted_registries:
        - registry.example.com/trusted
        - docker.io/library
        - %s
  - name: disallow-latest-tag
%s
  - {name: require-attestation, mode: "off"}
  - {name: require-receipt, mode: "off"}
  - {name: resource-limits, mode: "off"}
  - {name: production-replicas, mode: "off"}
  - {name: soc2-audit-logging, mode: "off"}
  - {name: gdpr-annotations, mode: "off"}
exemptions:
  annotationGroups: [break-glass]
`, extra, latestTag)
}

// policyReport is the part of a wgpolicyk8s.io/v1alpha2 PolicyReport the test reads.
type policyReport struct {
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Summary map[string]int `json:"summary"`
	Results []struct {
		Policy    string            `json:"policy"`
		Result    string            `json:"result"`
		Message   string            `json:"message"`
		Severity  string            `json:"severity"`
		Category  string            `json:"category"`
		Props     map[string]string `json:"properties"`
		Resources []struct {
			Kind, Name string
		} `json:"resources"`
	} `json:"results"`
}

func readReport(ns string) (policyReport, error) {
	var r policyReport
	out, errOut, err := cluster.Kubectl(context.Background(), "", "get", "policyreports.wgpolicyk8s.io", "attest", "-n", ns, "-o", "json")
	if err != nil {
		return r, fmt.Errorf("%v: %s", err, errOut)
	}
	return r, json.Unmarshal([]byte(out), &r)
}

// verdicts are a report's results as "Kind/name policy" → result.
func (r policyReport) verdicts() map[string]string {
	out := map[string]string{}
	for _, res := range r.Results {
		for _, o := range res.Resources {
			out[o.Kind+"/"+o.Name+" "+res.Policy] = res.Result
		}
	}
	return out
}

func leaseHolder(t *testing.T) string {
	t.Helper()
	l, err := cluster.Client.CoordinationV1().Leases(harness.Namespace).Get(context.Background(), "attest-audit", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

var lastRun = regexp.MustCompile(`(?m)^attest_audit_last_run_timestamp_seconds (\S+)$`)

// lastAudit is when replica a last completed an audit (0: never), from its metrics.
func lastAudit(t *testing.T, a *harness.Attest) float64 {
	t.Helper()
	m, err := a.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return lastRunIn(t, m)
}

// mainLastAudit is lastAudit of the harness's own ATTEST.
func mainLastAudit(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(cluster.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return lastRunIn(t, string(b))
}

func lastRunIn(t *testing.T, m string) float64 {
	t.Helper()
	match := lastRun.FindStringSubmatch(m)
	if match == nil {
		t.Fatalf("no attest_audit_last_run_timestamp_seconds in the metrics:\n%s", m)
	}
	v, err := strconv.ParseFloat(match[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBackgroundAudit: violating Deployments created while a policy audits show in their namespace's
// PolicyReport with their ReplicaSets and Pods folded in; moving the policy to enforce with an enforceAfter writes
// drafts; a promoted and approved draft turns the result into skip; a fixed workload's draft goes; check
// --cluster lists the same violations; of two replicas only the Lease holder writes reports, and the other takes
// over when it stops.
func TestBackgroundAudit(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, ok := kubectl(t, "", "apply", "-k", filepath.Join(repo, "manifests", "policyreports")); !ok {
		t.Fatalf("install the PolicyReport CRDs: %s%s", out, errOut)
	}
	if out, errOut, ok := kubectl(t, "", "wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io", "--timeout=30s"); !ok {
		t.Fatalf("%s%s", out, errOut)
	}
	eventually(t, 30*time.Second, func() error {
		if leaseHolder(t) == "" {
			return fmt.Errorf("nobody holds the audit Lease")
		}
		return nil
	})
	ns := namespace(t, "e2e-background-audit") // not e2e-audit: TestAuditModeAdmitsWithAWarning's namespace may still be terminating
	grantExceptions(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ATTEST's log:\n%s", cluster.AttestLog())
		}
	})
	// Enabling disallow-latest-tag in audit would draft its violators: let that audit pass before there are any.
	audited := "    mode: audit"
	before := float64(time.Now().UnixNano()) / 1e9
	writeConfig(t, auditConfig(audited, "quay.io/step-1"))
	eventually(t, 60*time.Second, func() error {
		if last := mainLastAudit(t); last < before {
			return fmt.Errorf("last audit at %f, before the change at %f", last, before)
		}
		return nil
	})
	latest := "registry.example.com/trusted/app:latest"
	for _, d := range []string{
		deployment(ns, "web", 2, container("app", latest, false)),
		deployment(ns, "batch", 1, container("app", latest, false)),
		deployment(ns, "api", 1, container("app", trustedImage, false)),
	} {
		// The config reload may not have reached the webhook yet: retry until the apply is admitted.
		eventually(t, 30*time.Second, func() error {
			if out, errOut, ok := kubectl(t, d, "apply", "-f", "-"); !ok {
				return fmt.Errorf("%s%s", out, errOut)
			}
			return nil
		})
	}
	eventually(t, 60*time.Second, func() error { // kube-controller-manager makes the ReplicaSets and Pods
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 2 {
			return fmt.Errorf("pods of web: %v (%v)", pods, err)
		}
		return nil
	})

	// The audit runs when the policies' settings change.
	writeConfig(t, auditConfig(audited, "quay.io/step-2"))
	var report policyReport
	eventually(t, 60*time.Second, func() error {
		if report, err = readReport(ns); err != nil {
			return err
		}
		if v := report.verdicts()["Deployment/web disallow-latest-tag"]; v != "warn" {
			return fmt.Errorf("Deployment/web disallow-latest-tag is %q in %+v", v, report.verdicts())
		}
		return nil
	})
	got := report.verdicts()
	for k, want := range map[string]string{
		"Deployment/web disallow-latest-tag":   "warn",
		"Deployment/batch disallow-latest-tag": "warn",
		"Deployment/api disallow-latest-tag":   "pass",
		"Deployment/web no-privileged":         "pass",
		"Deployment/web trusted-registries":    "pass",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "Pod/") || strings.HasPrefix(k, "ReplicaSet/") {
			t.Errorf("%s reported on its own; it belongs to its Deployment", k)
		}
	}
	for _, res := range report.Results {
		if res.Policy == "disallow-latest-tag" && res.Result == "warn" && !strings.HasPrefix(res.Message, "[disallow-latest-tag] spec.template.spec.containers[0] (app): ") {
			t.Errorf("message %q does not name the path", res.Message)
		}
	}
	if report.Summary["warn"] != 2 || report.Summary["fail"] != 0 {
		t.Errorf("summary %v", report.Summary)
	}
	holder := leaseHolder(t)
	if holder == "" || report.Metadata.Annotations["policy.attest.continuu.ms/audited-by"] != holder {
		t.Errorf("the report was written by %q, the Lease is held by %q", report.Metadata.Annotations["policy.attest.continuu.ms/audited-by"], holder)
	}

	// A second replica serves admissions but does not audit while the first holds the Lease.
	b, err := cluster.StartReplica(ctx, harness.ReplicaOptions{Name: "audit-b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	if err := b.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// Rollout: enforce from an hour ahead. The audit drafts exceptions for the two existing violators.
	enforceAfter := time.Now().Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	writeConfig(t, auditConfig("    mode: enforce\n    enforceAfter: \""+enforceAfter+"\"\n    existingWorkloads: audit", "quay.io/step-3"))
	eventually(t, 60*time.Second, func() error {
		out, errOut, ok := kubectl(t, "", "get", "policyexceptiondrafts", "-n", ns, "-o", "name")
		if !ok || !strings.Contains(out, "deployment-web-disallow-latest-tag") || !strings.Contains(out, "deployment-batch-disallow-latest-tag") {
			return fmt.Errorf("drafts: %s%s", out, errOut)
		}
		return nil
	})
	if out, _, _ := kubectl(t, "", "get", "policyexceptiondrafts", "-n", ns, "-o", "name"); strings.Contains(out, "api") {
		t.Errorf("a draft for the compliant Deployment api: %s", out)
	}
	out, errOut, _ := kubectl(t, "", "get", "policyexceptiondraft", "deployment-web-disallow-latest-tag", "-n", ns, "-o", "jsonpath={.metadata.labels}")
	if !strings.Contains(out, `"policy.attest.continuu.ms/policy":"disallow-latest-tag"`) || !strings.Contains(out, `"policy.attest.continuu.ms/valid-until":"`) ||
		!strings.Contains(out, `"policy.attest.continuu.ms/workload-last-seen":"`) {
		t.Errorf("draft labels: %s%s", out, errOut)
	}
	if lastAudit(t, b) != 0 {
		t.Errorf("replica b audited while %s holds the Lease", holder)
	}
	if h := leaseHolder(t); h != holder {
		t.Errorf("the Lease moved from %s to %s while its holder ran", holder, h)
	}

	// Promote web's draft as the requester, approve as the security team: the next audit reports skip.
	bob, err := cluster.UserKubeconfig(requester)
	if err != nil {
		t.Fatal(err)
	}
	carol, err := cluster.UserKubeconfig(approver, "security-team")
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, ok := attestCLI(t, bob, "policy", "exemptions", "drafts", "-n", ns); !ok ||
		!regexp.MustCompile(`(?m)^deployment-web-disallow-latest-tag +disallow-latest-tag +Deployment/web +`+regexp.QuoteMeta(enforceAfter)+` `).MatchString(out) {
		t.Errorf("drafts list: %s%s", out, errOut)
	}
	if out, errOut, ok := attestCLI(t, bob, "policy", "exempt", "promote", "deployment-web-disallow-latest-tag", "-n", ns, "--duration", "7d", "--reason", "CHG-42 moving to pinned tags"); !ok {
		t.Fatalf("promote: %s%s", out, errOut)
	}
	if out, errOut, ok := attestCLI(t, carol, "policy", "exempt", "approve", "deployment-web-disallow-latest-tag", "-n", ns, "--comment", "ok"); !ok {
		t.Fatalf("approve: %s%s", out, errOut)
	}
	// batch is fixed: its draft goes at the next audit.
	fixed := deployment(ns, "batch", 1, container("app", trustedImage, false))
	if out, errOut, ok := kubectl(t, fixed, "apply", "-f", "-"); !ok {
		t.Fatalf("fix batch: %s%s", out, errOut)
	}
	writeConfig(t, auditConfig("    mode: enforce\n    enforceAfter: \""+enforceAfter+"\"\n    existingWorkloads: audit", "quay.io/step-4"))
	eventually(t, 60*time.Second, func() error {
		if report, err = readReport(ns); err != nil {
			return err
		}
		v := report.verdicts()
		if v["Deployment/web disallow-latest-tag"] != "skip" || v["Deployment/batch disallow-latest-tag"] != "pass" {
			return fmt.Errorf("verdicts %v", v)
		}
		return nil
	})
	for _, res := range report.Results {
		if res.Policy == "disallow-latest-tag" && res.Result == "skip" &&
			(res.Props["exemption"] != "PolicyException "+ns+"/deployment-web-disallow-latest-tag" || !strings.Contains(res.Props["approver"], approver) || res.Props["expires"] == "") {
			t.Errorf("skip result without its exemption: %+v", res.Props)
		}
	}
	eventually(t, 30*time.Second, func() error {
		out, errOut, _ := kubectl(t, "", "get", "policyexceptiondrafts", "-n", ns, "-o", "name")
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("drafts left after batch was fixed and web exempted: %s%s", out, errOut)
		}
		return nil
	})

	// check --cluster -A finds what the report holds, as the same pipeline does.
	out, errOut, _ = attestCLI(t, cluster.Kubeconfig, "policy", "check", "--cluster", "-A", "--format", "json", "--offline", "--config", cluster.ConfigPath)
	var check struct {
		Results []struct {
			Kind, Namespace, Name, Policy string
			Exemption                     *struct{ Name string }
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &check); err != nil {
		t.Fatalf("check --cluster: %v: %s%s", err, out, errOut)
	}
	found := map[string]bool{}
	for _, r := range check.Results {
		if r.Namespace == ns {
			found[r.Kind+"/"+r.Name+" "+r.Policy] = true
		}
	}
	for k, v := range report.verdicts() {
		if (v == "fail" || v == "warn" || v == "skip") != found[k] {
			t.Errorf("%s: %s in the report, listed by check --cluster: %v", k, v, found[k])
		}
	}
	if !found["Deployment/web disallow-latest-tag"] {
		t.Errorf("check --cluster did not list web's exempted violation: %s", out)
	}

	// The holder stops: b takes over within the lease duration and audits.
	writer := report.Metadata.Annotations["policy.attest.continuu.ms/audited-by"]
	cluster.StopAttest()
	mainStopped := true
	t.Cleanup(func() {
		b.Stop()
		if !mainStopped {
			return
		}
		if err := cluster.StartAttest(ctx); err != nil {
			t.Errorf("restart the harness's ATTEST: %v", err)
			return
		}
		if err := cluster.WaitForWebhook(ctx, privilegedPod("default", "probe")); err != nil {
			t.Errorf("the harness's ATTEST after the test: %v", err)
		}
	})
	stopped := time.Now()
	eventually(t, 20*time.Second, func() error {
		if h := leaseHolder(t); h == holder || h == "" {
			return fmt.Errorf("the Lease is still held by %q", h)
		}
		if lastAudit(t, b) == 0 {
			return fmt.Errorf("replica b holds the Lease but has not audited yet")
		}
		return nil
	})
	t.Logf("replica b took over and audited %s after the holder stopped", time.Since(stopped).Round(100*time.Millisecond))
	eventually(t, 20*time.Second, func() error {
		r, err := readReport(ns)
		if err != nil {
			return err
		}
		if by := r.Metadata.Annotations["policy.attest.continuu.ms/audited-by"]; by == writer || by != leaseHolder(t) {
			return fmt.Errorf("report written by %q, Lease held by %q", by, leaseHolder(t))
		}
		return nil
	})

	// The harness's ATTEST comes back and waits; b dies without releasing the Lease (SIGKILL): once the Lease runs
	// out (15 s), the harness's ATTEST takes it and audits.
	if err := cluster.StartAttest(ctx); err != nil {
		t.Fatalf("restart the harness's ATTEST: %v", err)
	}
	mainStopped = false
	bHolder := leaseHolder(t)
	if mainLastAudit(t) != 0 {
		t.Errorf("the restarted ATTEST audited while b holds the Lease")
	}
	b.Kill()
	killed := time.Now()
	eventually(t, 40*time.Second, func() error {
		if h := leaseHolder(t); h == bHolder || h == "" {
			return fmt.Errorf("the Lease is still held by %q", h)
		}
		if mainLastAudit(t) == 0 {
			return fmt.Errorf("the harness's ATTEST holds the Lease but has not audited yet")
		}
		return nil
	})
	took := time.Since(killed)
	t.Logf("the harness's ATTEST took over and audited %s after b was killed", took.Round(100*time.Millisecond))
	if took < 10*time.Second {
		t.Errorf("took over %s after the kill, before b's Lease could have run out", took)
	}
	if err := cluster.WaitForWebhook(ctx, privilegedPod("default", "probe")); err != nil {
		t.Errorf("the harness's ATTEST after the test: %v", err)
	}
}
