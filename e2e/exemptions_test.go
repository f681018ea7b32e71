package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	requester = "dev@company.com"
	approver  = "sec1@company.com"
)

// kubectlAs runs kubectl impersonating user and groups (the admin may impersonate), as a person would run it.
func kubectlAs(t *testing.T, user string, groups []string, stdin string, args ...string) (string, string, bool) {
	t.Helper()
	as := []string{"--as=" + user}
	for _, g := range groups {
		as = append(as, "--as-group="+g)
	}
	return kubectl(t, stdin, append(as, args...)...)
}

// grantExceptions lets requester and approver manage PolicyExceptions in ns through the shipped ClusterRole.
func grantExceptions(t *testing.T, ns string) {
	t.Helper()
	binding := fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: exceptions, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: attest-exception-approver}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: %s}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: %s}
`, ns, requester, approver)
	if out, errOut, ok := kubectl(t, binding, "apply", "-f", "-"); !ok {
		t.Fatalf("grant: %s%s", out, errOut)
	}
}

func policyException(ns, name string, expires time.Time) string {
	return fmt.Sprintf(`apiVersion: policy.attest.continuu.ms/v1alpha1
kind: PolicyException
metadata: {name: %s, namespace: %s}
spec:
  policies: [no-privileged]
  targets:
    - kinds: [Deployment]
      names: [web]
  expiresAt: %s
  reason: vendor monitoring agent needs host access until the vendor ships v3
  approvedBy: security-team
  ticket: SEC-1234
`, name, ns, expires.UTC().Format(time.RFC3339))
}

// TestPolicyExceptionLifecycle walks the governance a platform team relies on against the real API server: a
// requester creates an exception (recorded as creator, Pending), cannot approve it, an approver can, and then
// one exception for a Deployment lets the ReplicaSet controller create its privileged Pods, while a Pod that
// merely shares a name prefix is still denied.
func TestPolicyExceptionLifecycle(t *testing.T) {
	ns := namespace(t, "e2e-exception")
	grantExceptions(t, ns)
	web := deployment(ns, "web", 2, container("app", trustedImage, true))
	if _, errOut, ok := kubectl(t, web, "apply", "--dry-run=server", "-f", "-"); ok || !strings.Contains(errOut, "[no-privileged]") {
		t.Fatalf("privileged Deployment admitted before any exception: %s", errOut)
	}

	if out, errOut, ok := kubectlAs(t, requester, nil, policyException(ns, "web-agent", time.Now().Add(45*24*time.Hour)), "apply", "-f", "-"); ok ||
		!strings.Contains(errOut, "spec.expiresAt:") || !strings.Contains(errOut, "beyond the maximum of 30 days") {
		t.Fatalf("an exception beyond the maximum was not refused:\n%s%s", out, errOut)
	}
	if out, errOut, ok := kubectlAs(t, requester, nil, policyException(ns, "web-agent", time.Now().Add(7*24*time.Hour)), "apply", "-f", "-"); !ok {
		t.Fatalf("create exception: %s%s", out, errOut)
	}
	out, _, _ := kubectl(t, "", "get", "policyexception", "web-agent", "-n", ns, "-o", "jsonpath={.metadata.annotations.policy\\.attest\\.continuu\\.ms/created-by} {.status.phase}")
	if out != requester+" Pending" {
		t.Fatalf("created-by and phase = %q, want %q", out, requester+" Pending")
	}
	eventually(t, 15*time.Second, func() error {
		_, errOut, ok := kubectl(t, web, "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(errOut, "PolicyException "+ns+"/web-agent is pending: 0 of 1 required approvals") {
			return fmt.Errorf("a pending exception must not exempt, and the denial should say it is pending: %s", errOut)
		}
		return nil
	})

	approve := []string{"annotate", "policyexception", "web-agent", "-n", ns, "policy.attest.continuu.ms/approve=reviewed SEC-1234"}
	if _, errOut, ok := kubectlAs(t, requester, []string{"security-team"}, "", approve...); ok || !strings.Contains(errOut, "cannot approve it") {
		t.Fatalf("self-approval was not refused: %s", errOut)
	}
	if _, errOut, ok := kubectlAs(t, approver, []string{"developers"}, "", approve...); ok || !strings.Contains(errOut, "may not approve PolicyExceptions") {
		t.Fatalf("approval by a non-member was not refused: %s", errOut)
	}
	if out, errOut, ok := kubectlAs(t, approver, []string{"security-team"}, "", approve...); !ok {
		t.Fatalf("approval refused: %s%s", out, errOut)
	}
	out, _, _ = kubectl(t, "", "get", "policyexception", "web-agent", "-n", ns, "-o", "jsonpath={.status.phase} {.status.approvals[0].user}")
	if out != "Approved "+approver {
		t.Fatalf("after approval: %q", out)
	}

	var warnings string
	eventually(t, 15*time.Second, func() error {
		out, errOut, ok := kubectl(t, web, "apply", "-f", "-")
		if !ok {
			return fmt.Errorf("approved exception not applied yet: %s", errOut)
		}
		warnings = out + errOut
		return nil
	})
	if !strings.Contains(warnings, "Warning: exempted by PolicyException "+ns+"/web-agent (approved by "+approver) {
		t.Fatalf("the exempted apply did not warn with the exception and its approver:\n%s", warnings)
	}
	ctx := context.Background()
	eventually(t, 60*time.Second, func() error {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d privileged pods created by the ReplicaSet controller, want 2", len(pods.Items))
		}
		return nil
	})
	if _, errOut, ok := kubectl(t, privilegedPod(ns, "web-x"), "apply", "-f", "-"); ok || !strings.Contains(errOut, "[no-privileged]") {
		t.Fatalf("a Pod web-x not owned by web was admitted: %s", errOut)
	}

	// A spec change drops the approval: the exception is Pending again.
	edited := strings.Replace(policyException(ns, "web-agent", time.Now().Add(7*24*time.Hour)), "names: [web]", "names: [web, api]", 1)
	if out, errOut, ok := kubectlAs(t, requester, nil, edited, "apply", "-f", "-"); !ok {
		t.Fatalf("edit exception: %s%s", out, errOut)
	}
	out, _, _ = kubectl(t, "", "get", "policyexception", "web-agent", "-n", ns, "-o", "jsonpath={.status.phase}")
	if out != "Pending" {
		t.Fatalf("after a spec change the phase is %q, want Pending", out)
	}
}

// TestAnnotationExemptionNeedsAnAuthorizedRequester shows the denial explaining why annotations were ignored.
func TestAnnotationExemptionNeedsAnAuthorizedRequester(t *testing.T) {
	ns := namespace(t, "e2e-annotations")
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: %s
  annotations:
    policy.attest.continuu.ms/exempt: no-privileged
    policy.attest.continuu.ms/exempt-reason: incident 42
    policy.attest.continuu.ms/exempt-approved-by: bob@company.com
    policy.attest.continuu.ms/exempt-expires: %q
spec:
  containers:
%s`, ns, time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339), container("app", trustedImage, true))
	_, errOut, ok := kubectl(t, pod, "apply", "--dry-run=server", "-f", "-")
	if ok || !strings.Contains(errOut, "exemption ignored: exemption annotations are honoured only for groups break-glass, and attest-e2e-admin is not one of them") {
		t.Fatalf("unauthorized annotation exemption: ok=%v\n%s", ok, errOut)
	}
	out, errOut, ok := kubectlAs(t, "oncall@company.com", []string{"system:masters", "break-glass"}, pod, "apply", "--dry-run=server", "-f", "-")
	if !ok || !strings.Contains(out+errOut, "Warning: exempted by annotation") {
		t.Fatalf("break-glass annotation exemption: ok=%v\n%s%s", ok, out, errOut)
	}
}

// attestCLI runs the attest binary with a kubeconfig, as a user at a terminal would.
func attestCLI(t *testing.T, kubeconfig string, args ...string) (string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cluster.AttestBinary(), append(args, "--kubeconfig", kubeconfig)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err == nil
}

// TestExemptionCLIAgainstTheCluster drives `attest policy exempt`, `exempt approve` and `exemptions list` with
// real users' kubeconfigs against the API server and ATTEST's webhook.
func TestExemptionCLIAgainstTheCluster(t *testing.T) {
	requireLocal(t)
	ns := namespace(t, "e2e-exempt-cli")
	grantExceptions(t, ns)
	bob, err := cluster.UserKubeconfig(requester)
	if err != nil {
		t.Fatal(err)
	}
	carol, err := cluster.UserKubeconfig(approver, "security-team")
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, ok := attestCLI(t, bob, "policy", "exempt", "--policy", "no-privileged", "--resource", "Deployment/"+ns+"/web",
		"--reason", "vendor agent", "--duration", "45d"); ok || !strings.Contains(errOut, "beyond the maximum") {
		t.Fatalf("a 45-day exemption was not refused: %s", errOut)
	}
	out, errOut, ok := attestCLI(t, bob, "policy", "exempt", "--policy", "no-privileged", "--resource", "Deployment/"+ns+"/web",
		"--reason", "vendor agent", "--duration", "7d", "--ticket", "SEC-9", "--name", "web-agent", "--apply")
	if !ok {
		t.Fatalf("exempt --apply: %s%s", out, errOut)
	}
	out, errOut, _ = attestCLI(t, bob, "policy", "exemptions", "list", "-n", ns, "--format", "json")
	if !strings.Contains(out, `"web-agent"`) || !strings.Contains(out, `"pending"`) {
		t.Fatalf("list after creation:\n%s%s", out, errOut)
	}
	if _, errOut, ok := attestCLI(t, bob, "policy", "exempt", "approve", "web-agent", "-n", ns); ok || !strings.Contains(errOut, "cannot approve it") {
		t.Fatalf("self-approval through the CLI: %s", errOut)
	}
	if out, errOut, ok := attestCLI(t, carol, "policy", "exempt", "approve", "web-agent", "-n", ns, "--comment", "ok"); !ok {
		t.Fatalf("approval through the CLI: %s%s", out, errOut)
	}
	out, errOut, _ = attestCLI(t, bob, "policy", "exemptions", "list", "-n", ns, "--status", "active", "--format", "json")
	if !strings.Contains(out, `"web-agent"`) {
		t.Fatalf("list --status active after approval:\n%s%s", out, errOut)
	}
}
