package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestManifestsApplyOnARealAPIServer(t *testing.T) {
	out, errOut, ok := kubectl(t, "", "apply", "--dry-run=server", "-k", filepath.Join("..", "manifests", "base"))
	if !ok {
		t.Fatalf("kubectl apply --dry-run=server -k manifests/base failed:\n%s%s", out, errOut)
	}
	for _, want := range []string{"validatingwebhookconfiguration.admissionregistration.k8s.io/attest", "mutatingwebhookconfiguration.admissionregistration.k8s.io/attest",
		"deployment.apps/attest", "poddisruptionbudget.policy/attest", "service/attest", "configmap/attest-config", "clusterrole.rbac.authorization.k8s.io/attest"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %s:\n%s", want, out)
		}
	}
}

func TestPrivilegedPodIsDenied(t *testing.T) {
	ns := namespace(t, "e2e-privileged")
	_, errOut, ok := kubectl(t, privilegedPod(ns, "web"), "apply", "-f", "-")
	if ok {
		t.Fatal("a privileged pod was admitted")
	}
	want := denied + "[no-privileged] spec.containers[0] (app): " + privilegedFix
	if !strings.Contains(errOut, want) {
		t.Fatalf("kubectl printed:\n%s\nwant it to contain:\n%s", errOut, want)
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("denied pod is stored (err=%v)", err)
	}
}

func TestServerDryRunGivesTheSameVerdictAndStoresNothing(t *testing.T) {
	ns := namespace(t, "e2e-dryrun")
	_, errOut, ok := kubectl(t, privilegedPod(ns, "bad"), "apply", "--dry-run=server", "-f", "-")
	if ok || !strings.Contains(errOut, denied+"[no-privileged] spec.containers[0] (app): "+privilegedFix) {
		t.Fatalf("dry run of a privileged pod: ok=%v\n%s", ok, errOut)
	}
	out, errOut, ok := kubectl(t, pod(ns, "good", container("app", trustedImage, false)), "apply", "--dry-run=server", "-f", "-")
	if !ok || !strings.Contains(out, "pod/good created (server dry run)") {
		t.Fatalf("dry run of a good pod: ok=%v\n%s%s", ok, out, errOut)
	}
	_, errOut, ok = kubectl(t, "", "get", "pod", "good", "-n", ns)
	if ok || !strings.Contains(errOut, `pods "good" not found`) {
		t.Fatalf("a dry-run pod was stored: %s", errOut)
	}
}

func TestAuditModeAdmitsWithAWarning(t *testing.T) {
	requireLocal(t)
	ns := namespace(t, "e2e-audit")
	setConfig(t, `
policies:
  - name: no-privileged
    enforcement: warn
  - name: trusted-registries
    parameters:
      trusted_registries: [registry.example.com/trusted, docker.io/library]
`)
	probe := privilegedPod(ns, "probe")
	eventually(t, 15*time.Second, func() error {
		_, errOut, ok := kubectl(t, probe, "apply", "--dry-run=server", "-f", "-")
		if !ok {
			return fmt.Errorf("config not reloaded yet: %s", errOut)
		}
		return nil
	})
	out, errOut, ok := kubectl(t, privilegedPod(ns, "web"), "apply", "-f", "-")
	if !ok {
		t.Fatalf("audit mode denied:\n%s", errOut)
	}
	want := "Warning: audit: [no-privileged] spec.containers[0] (app): " + privilegedFix
	if !strings.Contains(errOut, want) || !strings.Contains(out, "pod/web created") {
		t.Fatalf("kubectl printed:\n%s%s\nwant a warning %q", out, errOut, want)
	}
}

func TestUntrustedDeploymentIsDeniedAtTheDeployment(t *testing.T) {
	ns := namespace(t, "e2e-untrusted")
	_, errOut, ok := kubectl(t, deployment(ns, "web", 1, container("app", untrustedImage, false)), "apply", "-f", "-")
	want := denied + `[trusted-registries] spec.template.spec.containers[0] (app): image "quay.io/someone/app:1.0" is from quay.io/someone/app, which is not a trusted registry; use an image under docker.io/library, registry.example.com/trusted, or add a PolicyException`
	if ok || !strings.Contains(errOut, want) {
		t.Fatalf("kubectl printed:\n%s\nwant:\n%s", errOut, want)
	}
}

func TestTrustedDeploymentGetsReplicaSetAndPodsThroughTheWebhook(t *testing.T) {
	ns := namespace(t, "e2e-trusted")
	if out, errOut, ok := kubectl(t, deployment(ns, "web", 2, container("app", trustedImage, false)), "apply", "-f", "-"); !ok {
		t.Fatalf("trusted deployment refused:\n%s%s", out, errOut)
	}
	ctx := context.Background()
	eventually(t, 60*time.Second, func() error {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods, want 2", len(pods.Items))
		}
		return nil
	})
	rs, err := cluster.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(rs.Items) != 1 {
		t.Fatalf("replica sets: %v, %v", rs, err)
	}
	if !cluster.Local() {
		return // the ATTEST log is in the cluster's pods
	}
	// The decision log is written just after each answer: wait for the lines, not only the Pods.
	eventually(t, 10*time.Second, func() error {
		log := cluster.AttestLog()
		if !strings.Contains(log, `"kind":"ReplicaSet","subresource":"","namespace":"`+ns+`"`) ||
			!strings.Contains(log, `"user":"system:serviceaccount:kube-system:replicaset-controller","operation":"CREATE","kind":"Pod"`) {
			return fmt.Errorf("the ReplicaSet and its Pods did not go through ATTEST; log:\n%s", tail(log, 30))
		}
		return nil
	})
}

func TestCronJobWithPrivilegedInitContainerIsDenied(t *testing.T) {
	ns := namespace(t, "e2e-cronjob")
	cronjob := fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: %s
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers:
%s          containers:
%s`, ns, indent(container("setup", trustedImage, false)+container("tune", trustedImage, true), 6), indent(container("job", trustedImage, false), 6))
	_, errOut, ok := kubectl(t, cronjob, "apply", "-f", "-")
	want := denied + "[no-privileged] spec.jobTemplate.spec.template.spec.initContainers[1] (tune): " + privilegedFix
	if ok || !strings.Contains(errOut, want) {
		t.Fatalf("kubectl printed:\n%s\nwant:\n%s", errOut, want)
	}
}

func TestEphemeralDebugContainerIsEvaluated(t *testing.T) {
	ns := namespace(t, "e2e-debug")
	if _, errOut, ok := kubectl(t, pod(ns, "web", container("app", trustedImage, false)), "apply", "-f", "-"); !ok {
		t.Fatal(errOut)
	}
	// The sysadmin profile makes the debug container privileged.
	_, errOut, ok := kubectl(t, "", "debug", "-n", ns, "web", "--image=busybox:1.36", "--profile=sysadmin", "--container=debugger")
	want := denied + "[no-privileged] spec.ephemeralContainers[0] (debugger): " + privilegedFix
	if ok || !strings.Contains(errOut, want) {
		t.Fatalf("kubectl debug printed:\n%s\nwant:\n%s", errOut, want)
	}
	out, errOut, ok := kubectl(t, "", "debug", "-n", ns, "web", "--image=busybox:1.36", "--profile=general", "--container=debugger")
	if !ok {
		t.Fatalf("an unprivileged debug container was refused:\n%s%s", out, errOut)
	}
	p, err := cluster.Client.CoreV1().Pods(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || len(p.Spec.EphemeralContainers) != 1 {
		t.Fatalf("ephemeral containers: %v (err %v)", p.Spec.EphemeralContainers, err)
	}
}

func TestConfigReloadAppliesToTheNextRequest(t *testing.T) {
	requireLocal(t)
	ns := namespace(t, "e2e-reload")
	manifest := pod(ns, "web", container("app", untrustedImage, false))
	if _, _, ok := kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-"); ok {
		t.Fatal("untrusted image admitted before the change")
	}
	setConfig(t, `
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: [registry.example.com/trusted, docker.io/library, quay.io/someone]
`)
	eventually(t, 15*time.Second, func() error {
		if _, errOut, ok := kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-"); !ok {
			return fmt.Errorf("still refused: %s", errOut)
		}
		return nil
	})
}

func TestWebhookDownFailsClosedOnlyWhereCovered(t *testing.T) {
	requireLocal(t)
	ns := namespace(t, "e2e-down")
	cluster.StopAttest()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := cluster.StartAttest(ctx); err != nil {
			t.Fatalf("restart attest: %v", err)
		}
		if err := cluster.WaitForWebhook(ctx, privilegedPod("default", "probe")); err != nil {
			t.Fatal(err)
		}
	})
	_, errOut, ok := kubectl(t, pod(ns, "web", container("app", trustedImage, false)), "apply", "-f", "-")
	if ok || !strings.Contains(errOut, `failed calling webhook "attest.continuu.ms"`) {
		t.Fatalf("with ATTEST down a covered namespace must refuse (failurePolicy Fail); kubectl printed:\n%s", errOut)
	}
	// attest-system enforces the restricted Pod Security Standard, so its pod is a compliant one.
	restricted := "    - name: app\n      image: " + untrustedImage + "\n      securityContext:\n        runAsNonRoot: true\n        allowPrivilegeEscalation: false\n        capabilities: {drop: [ALL]}\n        seccompProfile: {type: RuntimeDefault}\n"
	for excluded, c := range map[string]string{"kube-system": container("app", untrustedImage, true), "attest-system": restricted} {
		name := "survives-" + strings.ReplaceAll(excluded, "-", "")
		out, errOut, ok := kubectl(t, pod(excluded, name, c), "apply", "-f", "-")
		if !ok {
			t.Errorf("%s is covered by the webhook while ATTEST is down:\n%s%s", excluded, out, errOut)
		}
		_ = cluster.Client.CoreV1().Pods(excluded).Delete(context.Background(), name, metav1.DeleteOptions{})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestOverlaysBuild renders every overlay with the kustomize built into kubectl, so a broken patch or path is
// caught here rather than at a user's apply.
func TestOverlaysBuild(t *testing.T) {
	for _, overlay := range []string{"base", "overlays/kind", "overlays/cert-manager", "overlays/monitored"} {
		out, errOut, ok := kubectl(t, "", "kustomize", filepath.Join("..", "manifests", overlay))
		if !ok || !strings.Contains(out, "kind: ValidatingWebhookConfiguration") {
			t.Errorf("manifests/%s does not build:\n%s", overlay, errOut)
		}
	}
}
