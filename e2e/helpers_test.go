package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	trustedImage   = "registry.example.com/trusted/app:1.0"
	untrustedImage = "quay.io/someone/app:1.0"
	denied         = `admission webhook "attest.continuu.ms" denied the request: `
	privilegedFix  = "privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
)

// namespace creates a namespace for one test and deletes it afterwards.
func namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// kubectl runs kubectl with stdin and returns stdout, stderr and whether it succeeded.
func kubectl(t *testing.T, stdin string, args ...string) (string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := cluster.Kubectl(ctx, stdin, args...)
	return out, errOut, err == nil
}

func container(name, image string, privileged bool) string {
	sc := ""
	if privileged {
		sc = "\n      securityContext:\n        privileged: true"
	}
	return fmt.Sprintf("    - name: %s\n      image: %s%s\n", name, image, sc)
}

func privilegedPod(ns, name string) string {
	return pod(ns, name, container("app", trustedImage, true))
}

func pod(ns, name string, containers ...string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  containers:\n%s", name, ns, strings.Join(containers, ""))
}

// indent shifts a container list written for a pod spec (4 spaces) to deeper pod specs.
func indent(s string, by int) string {
	pad := strings.Repeat(" ", by)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func deployment(ns, name string, replicas int, containers ...string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
%[4]s`, ns, name, replicas, indent(strings.Join(containers, ""), 4))
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setConfig replaces ATTEST's live config and restores the original when the test ends.
// quietPolicies turns off the library policies the suite does not exercise; setConfig appends it, so the text
// a test writes must end inside its policies: list.
const quietPolicies = `  - {name: require-attestation, mode: "off"}
  - {name: require-receipt, mode: "off"}
  - {name: disallow-latest-tag, mode: "off"}
  - {name: resource-limits, mode: "off"}
  - {name: production-replicas, mode: "off"}
  - {name: soc2-audit-logging, mode: "off"}
  - {name: gdpr-annotations, mode: "off"}
`

// setConfig replaces ATTEST's live config with text and the quiet settings of the other policies.
func setConfig(t *testing.T, text string) {
	t.Helper()
	writeConfig(t, strings.TrimRight(text, "\n")+"\n"+quietPolicies)
}

// writeConfig replaces ATTEST's live config (every replica reads the same file) and restores it when the test ends.
func writeConfig(t *testing.T, text string) {
	t.Helper()
	orig, err := os.ReadFile(cluster.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) {
		tmp := cluster.ConfigPath + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cluster.ConfigPath); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte(text))
	t.Cleanup(func() { write(orig) })
}

// requireLocal skips tests that stop ATTEST, edit its config file or read its log: only the local harness can.
func requireLocal(t *testing.T) {
	t.Helper()
	if !cluster.Local() {
		t.Skip("needs the local harness (it stops ATTEST, edits its config file or reads its log); skipped against an external cluster")
	}
}
