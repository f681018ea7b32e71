// Package kubectlplugin runs the built attest as a kubectl plugin: installed as kubectl-attest in a directory on
// PATH, `kubectl attest …` (kubectl's own plugin discovery, no cluster needed) behaves as `attest …`.
package kubectlplugin

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectl is the kubectl on PATH (a user's), else the one built with the e2e control plane.
func kubectl(t *testing.T) string {
	t.Helper()
	if k, err := exec.LookPath("kubectl"); err == nil {
		return k
	}
	if assets := os.Getenv("ATTEST_E2E_ASSETS"); assets != "" {
		return filepath.Join(assets, "kubectl")
	}
	t.Skip("no kubectl on PATH and ATTEST_E2E_ASSETS is not set")
	return ""
}

// install puts ATTEST_BIN on a fresh PATH directory as kubectl-attest, with attest-full beside it as `make build`
// leaves them, and returns that PATH plus kubectl's own directory.
func install(t *testing.T, kubectlBin string) string {
	t.Helper()
	bin := os.Getenv("ATTEST_BIN")
	if bin == "" {
		t.Skip("ATTEST_BIN (the built attest) is not set")
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{bin: "kubectl-attest", filepath.Join(filepath.Dir(bin), "attest-full"): "attest-full"} {
		if _, err := os.Stat(src); err != nil {
			if dst == "attest-full" {
				continue
			}
			t.Fatal(err)
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + filepath.Dir(kubectlBin)
}

func TestKubectlAttest(t *testing.T) {
	k := kubectl(t)
	path := install(t, k)
	work := t.TempDir()
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
    - name: app
      image: docker.io/library/nginx:1.27
      securityContext:
        privileged: true
`
	if err := os.WriteFile(filepath.Join(work, "pod.yaml"), []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + path, "HOME=" + work, "KUBECONFIG=" + filepath.Join(work, "none")}
	runKubectl := func(args ...string) (string, string, int) {
		cmd := exec.Command(k, args...)
		cmd.Dir, cmd.Env = work, env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("kubectl %v: %v", args, err)
		}
		return out.String(), errOut.String(), code
	}

	out, errOut, code := runKubectl("plugin", "list", "--name-only")
	if code != 0 || !strings.Contains(out, "kubectl-attest") {
		t.Fatalf("kubectl plugin list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	out, errOut, code = runKubectl("attest", "policy", "check", "-f", "pod.yaml")
	if code != 1 {
		t.Fatalf("kubectl attest policy check: exit %d, want 1 (a denial)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want := "pod.yaml:1: DENY Pod default/p: [no-privileged] spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
	if !strings.Contains(out, want) {
		t.Errorf("kubectl attest policy check does not print\n%s\ngot:\n%s", want, out)
	}

	out, errOut, code = runKubectl("attest", "policy", "--help")
	if code != 0 || !strings.Contains(out, "kubectl attest policy [command]") {
		t.Errorf("kubectl attest policy --help: exit %d, usage does not say `kubectl attest policy [command]`:\n%s%s", code, out, errOut)
	}
}
