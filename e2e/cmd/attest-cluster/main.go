// Command attest-cluster is `make run`: a real control plane on 127.0.0.1 (etcd, kube-apiserver and
// kube-controller-manager built from Go modules) with ATTEST registered, left running for kubectl until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/e2e/harness"
)

func main() {
	assets := flag.String("assets", "", "directory with kube-apiserver, etcd, kube-controller-manager and kubectl")
	attest := flag.String("attest", "", "the built attest binary")
	repo := flag.String("repo", ".", "the ATTEST checkout")
	config := flag.String("config", "examples/policies.yaml", "policies.yaml to start with (relative to --repo)")
	kubeconfig := flag.String("write-kubeconfig", ".run/kubeconfig", "where to write the admin kubeconfig (relative to --repo)")
	flag.Parse()
	if err := run(*assets, *attest, *repo, *config, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "attest-cluster:", err)
		os.Exit(1)
	}
}

func run(assets, attest, repo, config, kubeconfig string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "attest-run-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c, err := harness.Start(ctx, harness.Options{
		Assets: assets, Attest: attest, Repo: repo, Config: filepath.Join(repo, config), Dir: dir,
		ControllerManager: true, Log: os.Stdout,
	})
	if err != nil {
		return err
	}
	defer c.Stop()
	for name, labels := range map[string]map[string]string{"shop": nil, "production": {"environment": "production"}} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	kc := filepath.Join(repo, kubeconfig)
	if err := os.MkdirAll(filepath.Dir(kc), 0o700); err != nil {
		return err
	}
	raw, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kc, raw, 0o600); err != nil {
		return err
	}
	defer func() { _ = os.Remove(kc) }()
	rel, _ := filepath.Rel(repo, kc)
	fmt.Printf(`
ATTEST is running against a local kube-apiserver (kubectl %s). Its config is %s (edit it: ATTEST reloads it);
its log is %s.

  export KUBECONFIG=%s

  # denied: a privileged container
  kubectl apply -f examples/manifests/deployment-privileged.yaml

  # admitted with a warning: trusted-registries is in audit (warn) mode in examples/policies.yaml
  kubectl apply -f examples/manifests/pod-untrusted-registry.yaml

  # the same verdict, nothing stored
  kubectl apply --dry-run=server -f examples/manifests/deployment-privileged.yaml

Ctrl-C stops everything and cleans up.
`, c.KubectlPath(), c.ConfigPath, filepath.Join(dir, "attest.log"), rel)
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}
