// Command audit-bench measures the background audit at scale (README "Background audit"): a local control plane
// without kube-controller-manager (so no ReplicaSets or Pods are made), N Deployments created through the API in
// 10 namespaces, then one `attest serve` that takes the audit Lease and audits them all into PolicyReports. It
// prints the audit's wall time, the peak RSS of attest serve (VmHWM) and the API requests the audit issued.
//
//	make controlplane build && cd e2e && go run ./cmd/audit-bench -assets ~/.cache/attest/controlplane/v1.35.4 -attest ../bin/attest
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/continuums/attest/e2e/harness"
	"github.com/continuums/attest/webhook/webhooktest"
)

// benchConfig is the whole library as it ships but require-attestation (no registry to ask here): nine policies.
const benchConfig = `policies:
  - {name: require-attestation, mode: "off"}
  - name: trusted-registries
    parameters:
      trusted_registries: [registry.example.com/trusted]
`

func main() {
	assets := flag.String("assets", "", "directory with kube-apiserver, etcd, kube-controller-manager and kubectl")
	attest := flag.String("attest", "", "the built attest binary")
	repo := flag.String("repo", "..", "the ATTEST checkout")
	n := flag.Int("deployments", 10000, "Deployments to create")
	namespaces := flag.Int("namespaces", 10, "namespaces they are spread over")
	flag.Parse()
	if err := run(*assets, *attest, *repo, *n, *namespaces); err != nil {
		fmt.Fprintln(os.Stderr, "audit-bench:", err)
		os.Exit(1)
	}
}

func run(assets, attest, repo string, n, namespaces int) error {
	ctx := context.Background()
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	if attest, err = filepath.Abs(attest); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "attest-audit-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfgPath := filepath.Join(dir, "bench-policies.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchConfig), 0o600); err != nil {
		return err
	}
	c, err := harness.Start(ctx, harness.Options{Assets: assets, Attest: attest, Repo: repo, Config: cfgPath, Dir: dir, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer c.Stop()
	// The harness's ATTEST is only needed to bring the cluster up: stop it (it releases the audit Lease) and
	// remove its webhook registrations, so the Deployments are created straight through the API server.
	c.StopAttest()
	for _, args := range [][]string{
		{"delete", "validatingwebhookconfiguration", harness.LocalWebhookConfiguration},
		{"delete", "mutatingwebhookconfiguration", harness.LocalWebhookConfiguration},
		{"apply", "-k", filepath.Join(repo, "manifests", "policyreports")},
	} {
		if _, stderr, err := c.Kubectl(ctx, "", args...); err != nil {
			return fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
	}
	if err := create(ctx, c.Kubeconfig, n, namespaces); err != nil {
		return err
	}

	ports, err := webhooktest.FreePorts(3)
	if err != nil {
		return err
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1])
	start := time.Now()
	p, err := harness.StartProcess(ctx, "attest-bench", attest, filepath.Join(dir, "attest-bench.log"),
		"serve", "--host=127.0.0.1", "--port="+strconv.Itoa(ports[0]), "--cert-dir="+c.CertDir,
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(ports[1]), "--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(ports[2]),
		"--config="+cfgPath, "--kubeconfig="+filepath.Join(dir, "attest.kubeconfig"), "--audit-interval=1h")
	if err != nil {
		return err
	}
	defer p.Stop()
	var m map[string]float64
	for {
		if p.Exited() {
			return fmt.Errorf("attest serve exited:\n%s", p.Output())
		}
		if m, err = scrape(metricsURL); err == nil && m["attest_audit_last_run_timestamp_seconds"] > 0 {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("no audit completed within 10 minutes:\n%s", p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	wall := time.Since(start)
	hwm, err := peakRSS(p.PID())
	if err != nil {
		return err
	}
	reports, _, err := c.Kubectl(ctx, "", "get", "policyreports.wgpolicyk8s.io", "-A", "--no-headers")
	if err != nil {
		return err
	}
	fmt.Printf("\naudit of %d Deployments in %d namespaces (kube-controller-manager stopped: no ReplicaSets or Pods)\n", n, namespaces)
	fmt.Printf("  objects listed            %.0f\n", m["attest_audit_objects"])
	fmt.Printf("  audit duration            %.2f s (attest_audit_duration_seconds)\n", m["attest_audit_duration_seconds"])
	fmt.Printf("  wall time from exec       %.2f s (start-up, Lease, listing, evaluation, reports)\n", wall.Seconds())
	fmt.Printf("  peak RSS of attest serve  %.1f MiB (VmHWM)\n", float64(hwm)/1024)
	fmt.Printf("  API requests of the audit %.0f (attest_audit_api_requests_total)\n", m["attest_audit_api_requests_total"])
	fmt.Printf("  PolicyReports written     %d\n", len(strings.Split(strings.TrimSpace(reports), "\n")))
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, `"msg":"audit done"`) {
			fmt.Printf("  log: %s\n", line)
		}
	}
	return nil
}

// create makes n Deployments over the namespaces from 16 clients; half use a :latest tag (disallow-latest-tag
// warns), every tenth is privileged (no-privileged fails), so the reports hold every kind of result.
func create(ctx context.Context, kubeconfig string, n, namespaces int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%02d", i)}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := client.AppsV1().Deployments(fmt.Sprintf("bench-%02d", i%namespaces)).Create(ctx, benchDeployment(i), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("create Deployments: %w", err)
	}
	fmt.Printf("created %d Deployments in %s\n", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

func benchDeployment(i int) *appsv1.Deployment {
	name := fmt.Sprintf("app-%05d", i)
	image := "registry.example.com/trusted/app:1.0"
	if i%2 == 1 {
		image = "registry.example.com/trusted/app:latest"
	}
	privileged := i%10 == 0
	labels := map[string]string{"app": name}
	replicas := int32(2)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
				}}},
			},
		},
	}
}

var sample = regexp.MustCompile(`(?m)^(attest_audit_[a-z_]+) (\S+)$`)

func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url) //nolint:gosec // a loopback URL this command built
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range sample.FindAllStringSubmatch(string(b), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			out[m[1]] = v
		}
	}
	return out, nil
}

// peakRSS is the process's VmHWM in KiB.
func peakRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
