package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHelmInstall installs charts/attest with `helm install` against the API server, as a platform team would, in
// a namespace and under a release name of its own (so nothing collides with the kustomize install the suite runs
// on): the API server accepts every object, the running ATTEST admits the chart's Deployment and kube-controller-
// manager turns it into Pods, the chart's RBAC gives the release's ServiceAccount exactly its Secret, and `helm
// uninstall` removes it all but the CRDs.
func TestHelmInstall(t *testing.T) {
	helm := os.Getenv("ATTEST_HELM")
	if helm == "" {
		t.Skip("ATTEST_HELM (Helm, installed by `make e2e`) is not set")
	}
	const release, ns = "attest-chart", "attest-chart"
	chartDir, err := filepath.Abs(filepath.Join("..", "charts", "attest"))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := cluster.Kubeconfig
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, helm, append(args, "--kubeconfig", kubeconfig)...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	// Its own webhooks judge only objects labelled for them, and admit on failure: the Service has no endpoints
	// here (no kubelet), and the other tests must not meet a second webhook.
	out, err := run("install", release, chartDir, "--namespace", ns, "--create-namespace",
		"--set", "image.repository=registry.example.com/trusted/attest",
		"--set", "webhook.failurePolicy=Ignore",
		"--set-json", `webhook.objectSelector={"matchLabels":{"attest-e2e/chart-webhook":"on"}}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = run("uninstall", release, "--namespace", ns, "--wait", "--timeout", "60s")
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	if !strings.Contains(out, "STATUS: deployed") {
		t.Fatalf("helm install:\n%s", out)
	}
	ctx := context.Background()

	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--cert-secret=attest-chart/attest-chart-tls", "--webhook-configuration=attest-chart",
		"--cert-hosts=attest-chart.attest-chart.svc,attest-chart.attest-chart.svc.cluster.local", "--failure-policy=Ignore"} {
		if !slices.Contains(args, want) {
			t.Errorf("Deployment args %v lack %s", args, want)
		}
	}
	// kube-controller-manager makes the ReplicaSet and its two Pods, each admitted by the ATTEST under test.
	eventually(t, 60*time.Second, func() error {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=attest,app.kubernetes.io/component=webhook"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d Pods of the chart's Deployment, want 2", len(pods.Items))
		}
		return nil
	})

	vwc, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := json.Marshal(vwc.Webhooks[0].NamespaceSelector)
	if want := `{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","attest-chart"]}]}`; string(sel) != want {
		t.Errorf("namespaceSelector %s, want %s", sel, want)
	}
	if svc := vwc.Webhooks[0].ClientConfig.Service; svc == nil || svc.Name != release || svc.Namespace != ns {
		t.Errorf("webhook service %+v, want %s/%s", svc, ns, release)
	}

	// The release's ServiceAccount may update its own certificate Secret and no other, and create none.
	sa := "system:serviceaccount:" + ns + ":" + release
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "secrets/attest-chart-tls", "-n", ns}, "yes"},
		{[]string{"update", "secrets/other", "-n", ns}, "no"},
		{[]string{"create", "secrets", "-n", ns}, "no"},
		{[]string{"update", "validatingwebhookconfigurations/attest-chart"}, "yes"},
		{[]string{"update", "validatingwebhookconfigurations/attest"}, "no"},
		{[]string{"list", "policyexceptions.policy.attest.continuu.ms", "-A"}, "yes"},
	} {
		got, _, _ := kubectl(t, "", append([]string{"auth", "can-i", "--as", sa}, tc.args...)...)
		if strings.TrimSpace(got) != tc.want {
			t.Errorf("can %s %v: %q, want %s", sa, tc.args, strings.TrimSpace(got), tc.want)
		}
	}

	if _, err := run("uninstall", release, "--namespace", ns, "--wait", "--timeout", "60s"); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, release, metav1.GetOptions{}); err == nil {
		t.Error("ValidatingWebhookConfiguration attest-chart is still there after helm uninstall")
	}
	if _, err := cluster.Client.RbacV1().ClusterRoles().Get(ctx, release, metav1.GetOptions{}); err == nil {
		t.Error("ClusterRole attest-chart is still there after helm uninstall")
	}
	// The CRDs stay (Helm never deletes crds/): the PolicyExceptions in them outlive a release.
	if _, _, ok := kubectl(t, "", "get", "crd", "policyexceptions.policy.attest.continuu.ms"); !ok {
		t.Error("the PolicyException CRD went with the release")
	}
}
