package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/continuums/attest/e2e/harness"
)

// The people of examples/cedar's decision matrix, by their groups.
var (
	developer = []string{"developers"}
	sre       = []string{"sre"}
	auditor   = []string{"audit"}
)

// cedarPolicy is a Policy with examples/cedar/production.cedar, its business hours moved to the window
// [from, to) (minutes after midnight UTC): the API server stamps requests with the real time, so the test picks
// a window that does or does not hold now.
func cedarPolicy(t *testing.T, from, to int) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "examples", "cedar", "production.cedar"))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer(`duration("8h")`, fmt.Sprintf(`duration("%dm")`, from), `duration("18h")`, fmt.Sprintf(`duration("%dm")`, to)).Replace(string(text))
	if src == string(text) {
		t.Fatal("production.cedar no longer has the business hours this test moves")
	}
	return cedarPolicyResource("production-access", src)
}

// cedarPolicyResource is a Policy resource named name whose spec.cedar is src.
func cedarPolicyResource(name, src string) string {
	return "apiVersion: policy.attest.continuu.ms/v1alpha1\nkind: Policy\nmetadata: {name: " + name + "}\nspec:\n  cedar: |\n" + indent(src, 4)
}

// clientAs is a client impersonating user, groups and userInfo.extra (kubectl cannot set extra).
func clientAs(t *testing.T, user string, groups []string, extra map[string][]string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate.UserName, cfg.Impersonate.Groups, cfg.Impersonate.Extra = user, groups, extra
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cedarDeployment(ns, name, approval string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: trustedImage}}},
			},
		},
	}
	if approval != "" {
		d.Annotations = map[string]string{"attest.continuu.ms/approval-id": approval}
	}
	return d
}

// appsOperations are the operations of the webhook rule for apps in the URL-registered configuration.
func appsOperations(t *testing.T) []admissionregistrationv1.OperationType {
	t.Helper()
	vwc, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), harness.LocalWebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range vwc.Webhooks[0].Rules {
		if slices.Contains(r.APIGroups, "apps") {
			return r.Operations
		}
	}
	t.Fatal("no rule for apps")
	return nil
}

// waitForDeletes waits until ATTEST has (or has not) added DELETE to its webhook rules.
func waitForDeletes(t *testing.T, sent bool) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		if ops := appsOperations(t); slices.Contains(ops, admissionregistrationv1.Delete) != sent {
			return fmt.Errorf("the apps rule has operations %v; DELETE wanted: %v", ops, sent)
		}
		return nil
	})
}

// TestCedarPolicies runs the reference's decision matrix as a Cedar Policy against the real API server, with
// people of those groups: a developer deploying to production is denied with the policy's message, an SRE with
// MFA and an approval is admitted, audit deleting a production Deployment is denied, an emergency change outside
// business hours is admitted with its approval id; a changed Policy takes effect within seconds, and an invalid
// change is refused at kubectl apply while the last good set keeps deciding.
func TestCedarPolicies(t *testing.T) {
	ctx := context.Background()
	prod := namespace(t, "cedar-prod")
	dev := namespace(t, "cedar-dev")
	if _, err := cluster.Client.CoreV1().Namespaces().Patch(ctx, prod, "application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"environment":"production"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC lets every group change workloads: what stops them is ATTEST's Cedar policy, not authorization.
	binding := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cedar-e2e-edit}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: sre}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: audit}
`
	if out, errOut, ok := kubectl(t, binding, "apply", "-f", "-"); !ok {
		t.Fatalf("rbac: %s%s", out, errOut)
	}
	t.Cleanup(func() { kubectl(t, "", "delete", "clusterrolebinding", "cedar-e2e-edit", "--ignore-not-found") })
	t.Cleanup(func() {
		kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "production-access", "--ignore-not-found")
	})

	now := time.Now().UTC()
	minute := now.Hour()*60 + now.Minute()
	inside := func() (int, int) { return 0, 24 * 60 } // business hours all day: now is inside
	outside := func() (int, int) {                    // an hour that excludes now
		if minute < 12*60 {
			return minute + 60, minute + 120
		}
		return minute - 120, minute - 60
	}
	from, to := inside()
	if out, errOut, ok := kubectl(t, cedarPolicy(t, from, to), "apply", "-f", "-"); !ok {
		t.Fatalf("apply the Cedar policy: %s%s", out, errOut)
	}
	devWeb := deployment(prod, "dev-web", 1, container("app", trustedImage, false))
	eventually(t, 30*time.Second, func() error {
		if _, errOut, ok := kubectlAs(t, "dana", developer, devWeb, "apply", "-f", "-"); ok || !strings.Contains(errOut, "developers have read-only access") {
			return fmt.Errorf("the Cedar policy does not decide yet: %s", errOut)
		}
		return nil
	})

	t.Run("developer deploying to production is denied with the message", func(t *testing.T) {
		_, errOut, ok := kubectlAs(t, "dana", developer, devWeb, "apply", "-f", "-")
		want := denied + "[production-access]: developers have read-only access to production namespaces; deploy to a development namespace, or ask an SRE or a platform admin to make the change"
		if ok || !strings.Contains(errOut, want) {
			t.Fatalf("got %q, want %q", errOut, want)
		}
	})
	t.Run("developer deploying to development is admitted", func(t *testing.T) {
		if out, errOut, ok := kubectlAs(t, "dana", developer, deployment(dev, "web", 1, container("app", trustedImage, false)), "apply", "-f", "-"); !ok {
			t.Fatalf("%s%s", out, errOut)
		}
	})
	mfa := map[string][]string{"amr": {"pwd", "mfa"}}
	t.Run("SRE with MFA and an approval is admitted", func(t *testing.T) {
		c := clientAs(t, "sam", sre, mfa)
		if _, err := c.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "web", "CHG-1234"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SRE without MFA is denied", func(t *testing.T) {
		c := clientAs(t, "sam", sre, nil)
		_, err := c.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "no-mfa", "CHG-1234"), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "production changes need a session authenticated with MFA") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("SRE without an approval is denied", func(t *testing.T) {
		c := clientAs(t, "sam", sre, mfa)
		_, err := c.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "no-approval", ""), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "[production-access] metadata.annotations: production changes need an approval") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("audit deleting a production Deployment is denied", func(t *testing.T) {
		waitForDeletes(t, true) // ATTEST adds DELETE to its rules since a loaded policy judges deletions
		eventually(t, 20*time.Second, func() error {
			_, errOut, ok := kubectlAs(t, "ann", auditor, "", "delete", "deployment", "web", "-n", prod, "--wait=false")
			want := denied + "[production-access]: the audit group may read but never change or delete"
			if ok {
				return errors.New("audit deleted the production Deployment")
			}
			if !strings.Contains(errOut, want) {
				return fmt.Errorf("got %q, want %q", errOut, want)
			}
			return nil
		})
		if _, err := cluster.Client.AppsV1().Deployments(prod).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Fatalf("the Deployment is gone: %v", err)
		}
		// A forced deletion without an emergency approval is denied even for an SRE.
		_, errOut, ok := kubectlAs(t, "sam", sre, "", "delete", "deployment", "web", "-n", prod, "--grace-period=0", "--force", "--wait=false")
		if ok || !strings.Contains(errOut, "forced deletion (gracePeriodSeconds 0) needs an EMERGENCY- approval") {
			t.Fatalf("force delete: ok=%v %s", ok, errOut)
		}
	})

	// Hot reload: move business hours away from now; the change decides within seconds.
	from, to = outside()
	applied := time.Now()
	if out, errOut, ok := kubectl(t, cedarPolicy(t, from, to), "apply", "-f", "-"); !ok {
		t.Fatalf("apply the changed Cedar policy: %s%s", out, errOut)
	}
	sam := clientAs(t, "sam", sre, mfa)
	eventually(t, 30*time.Second, func() error {
		_, err := sam.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "after-hours", "CHG-1235"), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "production changes are allowed 08:00-18:00 UTC") {
			_ = cluster.Client.AppsV1().Deployments(prod).Delete(ctx, "after-hours", metav1.DeleteOptions{})
			return fmt.Errorf("the changed policy does not decide yet: %v", err)
		}
		return nil
	})
	t.Logf("the changed Cedar Policy decided %s after kubectl apply", time.Since(applied).Round(100*time.Millisecond))

	t.Run("an emergency change outside business hours is admitted with its approval id", func(t *testing.T) {
		d, err := sam.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "hotfix", "EMERGENCY-42"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Annotations["attest.continuu.ms/approval-id"] != "EMERGENCY-42" {
			t.Fatalf("annotations %v", d.Annotations)
		}
	})
	t.Run("an invalid change is refused at apply and the last good set keeps deciding", func(t *testing.T) {
		bad := strings.Replace(cedarPolicy(t, from, to), "context.namespace.production &&", "context.namespace.prod &&", 1)
		_, errOut, ok := kubectl(t, bad, "apply", "-f", "-")
		if ok || !strings.Contains(errOut, "spec.cedar: invalid Cedar policy: Policy/production-access:") || !strings.Contains(errOut, "attribute `prod`") {
			t.Fatalf("invalid Cedar accepted or unclear: ok=%v %s", ok, errOut)
		}
		_, err := sam.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "after-hours-2", "CHG-1236"), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "production changes are allowed 08:00-18:00 UTC") {
			t.Fatalf("the last good set no longer decides: %v", err)
		}
	})
	t.Run("without a policy that judges deletions, deletes are not sent to ATTEST", func(t *testing.T) {
		if out, errOut, ok := kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "production-access"); !ok {
			t.Fatalf("%s%s", out, errOut)
		}
		waitForDeletes(t, false)
		if out, errOut, ok := kubectlAs(t, "ann", auditor, "", "delete", "deployment", "web", "-n", prod, "--wait=false"); !ok {
			t.Fatalf("audit may delete once the policy is gone (RBAC allows it): %s%s", out, errOut)
		}
	})
	t.Run("a forbid typed to Deployments narrows DELETE to deployments", func(t *testing.T) {
		narrow := cedarPolicyResource("no-deployment-deletes", `@message("the audit group may not delete Deployments")
forbid (principal in k8s::Group::"audit", action == k8s::admission::Action::"delete", resource is apps::v1::Deployment);`)
		t.Cleanup(func() {
			kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "no-deployment-deletes", "--ignore-not-found")
		})
		if _, err := cluster.Client.AppsV1().Deployments(prod).Create(ctx, cedarDeployment(prod, "kept", "CHG-1237"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if out, errOut, ok := kubectl(t, narrow, "apply", "-f", "-"); !ok {
			t.Fatalf("%s%s", out, errOut)
		}
		// Discovery maps the kind to apps/deployments: a DELETE rule for them alone, the apps rule without DELETE.
		eventually(t, 30*time.Second, func() error {
			vwc, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, harness.LocalWebhookConfiguration, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var deletes []string
			for _, r := range vwc.Webhooks[0].Rules {
				if slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}) {
					deletes = append(deletes, strings.Join(r.APIGroups, ",")+"/"+strings.Join(r.Resources, ","))
				}
			}
			if ops := appsOperations(t); slices.Contains(ops, admissionregistrationv1.Delete) || !slices.Equal(deletes, []string{"apps/deployments"}) {
				return fmt.Errorf("apps rule %v, DELETE-only rules %v; want DELETE for apps/deployments alone", ops, deletes)
			}
			return nil
		})
		_, errOut, ok := kubectlAs(t, "ann", auditor, "", "delete", "deployment", "kept", "-n", prod, "--wait=false")
		if ok || !strings.Contains(errOut, "the audit group may not delete Deployments") {
			t.Fatalf("audit deleting a Deployment: ok=%v %s", ok, errOut)
		}
	})
	t.Run("a forbid typed to ConfigMaps sends their writes to ATTEST, and only while it is loaded", func(t *testing.T) {
		configMaps := cedarPolicyResource("production-configmaps", `@message("developers may not change ConfigMaps in production")
forbid (principal in k8s::Group::"developers", action in [k8s::admission::Action::"create", k8s::admission::Action::"update"],
  resource is core::v1::ConfigMap) when { context.namespace.production };`)
		t.Cleanup(func() {
			kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "production-configmaps", "--ignore-not-found")
		})
		if out, errOut, ok := kubectl(t, configMaps, "apply", "-f", "-"); !ok {
			t.Fatalf("%s%s", out, errOut)
		}
		waitForWriteRules(t, "/configmaps:CREATE,UPDATE")
		_, errOut, ok := kubectlAs(t, "dana", developer, "", "create", "configmap", "settings", "-n", prod, "--from-literal=mode=fast")
		if ok || !strings.Contains(errOut, "developers may not change ConfigMaps in production") {
			t.Fatalf("a developer creating a ConfigMap in production: ok=%v %s", ok, errOut)
		}
		if out, errOut, ok := kubectlAs(t, "dana", developer, "", "create", "configmap", "settings", "-n", dev, "--from-literal=mode=fast"); !ok {
			t.Fatalf("a developer creating a ConfigMap in development: %s%s", out, errOut)
		}
		if out, errOut, ok := kubectlAs(t, "sam", []string{"sre"}, "", "create", "configmap", "settings", "-n", prod, "--from-literal=mode=fast"); !ok {
			t.Fatalf("an SRE creating a ConfigMap in production: %s%s", out, errOut)
		}
		if out, errOut, ok := kubectl(t, "", "delete", "policies.policy.attest.continuu.ms", "production-configmaps"); !ok {
			t.Fatalf("%s%s", out, errOut)
		}
		waitForWriteRules(t, "")
		if out, errOut, ok := kubectlAs(t, "dana", developer, "", "create", "configmap", "later", "-n", prod, "--from-literal=mode=fast"); !ok {
			t.Fatalf("without the policy ConfigMaps are not ATTEST's (RBAC allows it): %s%s", out, errOut)
		}
	})
}

// waitForWriteRules waits until the rules of the kinds.attest.continuu.ms entry read want ("group/resources:
// OPERATIONS", space-separated; "" for none).
func waitForWriteRules(t *testing.T, want string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		vwc, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), harness.LocalWebhookConfiguration, metav1.GetOptions{})
		if err != nil {
			return err
		}
		i := slices.IndexFunc(vwc.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool { return w.Name == "kinds.attest.continuu.ms" })
		if i < 0 {
			return fmt.Errorf("no webhook kinds.attest.continuu.ms in %s", vwc.Name)
		}
		var got []string
		for _, r := range vwc.Webhooks[i].Rules {
			ops := make([]string, len(r.Operations))
			for j, op := range r.Operations {
				ops[j] = string(op)
			}
			got = append(got, strings.Join(r.APIGroups, ",")+"/"+strings.Join(r.Resources, ",")+":"+strings.Join(ops, ","))
		}
		if strings.Join(got, " ") != want {
			return fmt.Errorf("write rules %q, want %q", strings.Join(got, " "), want)
		}
		return nil
	})
}
