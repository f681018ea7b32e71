// Package e2e drives ATTEST through a real API server with kubectl, as a user would, and checks what kubectl
// prints. Locally (`make test`) it runs against etcd, kube-apiserver and kube-controller-manager built from Go
// modules; with KUBECONFIG set (`make e2e-kind`) it runs against that cluster, skipping what needs the local
// harness.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/continuums/attest/e2e/harness"
)

var cluster *harness.Cluster

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	if kc := os.Getenv("ATTEST_E2E_KUBECONFIG"); kc != "" {
		return runAgainst(m, kc)
	}
	assets := os.Getenv("ATTEST_E2E_ASSETS")
	if assets == "" {
		fmt.Println("SKIP e2e: neither ATTEST_E2E_ASSETS (the local control plane, set by `make test`) nor ATTEST_E2E_KUBECONFIG (`make e2e-kind`) is set")
		return 0
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	dir, err := os.MkdirTemp("", "attest-e2e-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := os.Getenv("ATTEST_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "attest")
		build := exec.Command("go", "build", "-o", bin, "./cmd/attest")
		build.Dir, build.Stdout, build.Stderr = repo, os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Println("build attest:", err)
			return 1
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	cluster, err = harness.Start(ctx, harness.Options{
		Assets: assets, Attest: bin, Repo: repo, Config: filepath.Join(repo, "e2e", "testdata", "policies.yaml"),
		Dir: dir, ControllerManager: true, Log: os.Stdout,
	})
	if err != nil {
		fmt.Println("start the e2e cluster:", err)
		return 1
	}
	// An interrupt tears everything down before the process ends: no process, port or directory is left.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-signals; ok {
			cluster.Stop()
			_ = os.RemoveAll(dir)
			os.Exit(130)
		}
	}()
	defer func() {
		signal.Stop(signals)
		close(signals)
		cluster.Stop()
	}()
	if err := cluster.WaitForWebhook(ctx, privilegedPod("default", "probe")); err != nil {
		fmt.Println(err, "\n", cluster.AttestLog())
		return 1
	}
	fmt.Printf("e2e cluster up and ATTEST effective in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// runAgainst runs the suite against a cluster where ATTEST was deployed from manifests/ (make e2e-kind).
func runAgainst(m *testing.M, kubeconfig string) int {
	var err error
	if cluster, err = harness.Connect(kubeconfig); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := cluster.WaitForWebhook(context.Background(), privilegedPod("default", "probe")); err != nil {
		fmt.Println(err)
		return 1
	}
	return m.Run()
}
