package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/continuums/attest/webhook/webhooktest"
)

// Attest is an `attest serve` process the harness started, and where it answers.
type Attest struct {
	*Process
	Name string
	// Port is the webhook's TLS port.
	Port int
	// ProbePort serves /healthz and /readyz and MetricsPort /metrics, plain HTTP on 127.0.0.1.
	ProbePort, MetricsPort int
	CertDir                string
}

// ReplicaOptions say how StartReplica runs another ATTEST beside the harness's own.
type ReplicaOptions struct {
	// Name tells its log and certificate directory apart.
	Name string
	// ManagedCerts runs it as the manifests do, with --cert-secret (it reads the CA and serving pair from the
	// Secret and waits for it before opening its TLS port). Without it, the serving pair of the harness's ATTEST is
	// copied into its --cert-dir, so it serves at once and writes nothing to the cluster.
	ManagedCerts bool
	// Args are more `attest serve` flags (e.g. --gatekeeper files).
	Args []string
}

// StartReplica starts another `attest serve` on a free port with the live config and ATTEST's kubeconfig; it does
// not wait for readiness (see WaitReady). The cluster stops it in Stop if the test has not.
func (c *Cluster) StartReplica(ctx context.Context, o ReplicaOptions) (*Attest, error) {
	ports, err := webhooktest.FreePorts(3)
	if err != nil {
		return nil, err
	}
	a := &Attest{Name: o.Name, Port: ports[0], ProbePort: ports[1], MetricsPort: ports[2], CertDir: filepath.Join(c.o.Dir, "certs-"+o.Name)}
	if err := os.MkdirAll(a.CertDir, 0o700); err != nil {
		return nil, err
	}
	if !o.ManagedCerts {
		for _, f := range []string{"tls.crt", "tls.key"} {
			b, err := os.ReadFile(filepath.Join(c.CertDir, f))
			if err != nil {
				return nil, fmt.Errorf("copy the serving pair: %w", err)
			}
			if err := os.WriteFile(filepath.Join(a.CertDir, f), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	if err := c.runServe(ctx, a, o.ManagedCerts, o.Args...); err != nil {
		return nil, err
	}
	c.faults.mu.Lock()
	c.faults.replicas = append(c.faults.replicas, a)
	c.faults.mu.Unlock()
	return a, nil
}

// runServe starts a.Process as `attest serve` on a.Port, with its probes and metrics on a.ProbePort and a.MetricsPort.
func (c *Cluster) runServe(ctx context.Context, a *Attest, managed bool, extra ...string) error {
	var err error
	args := []string{"serve", "--host=127.0.0.1", "--port=" + strconv.Itoa(a.Port), "--cert-dir=" + a.CertDir,
		"--metrics-bind-address=" + loopback(a.MetricsPort), "--health-probe-bind-address=" + loopback(a.ProbePort),
		"--config=" + c.ConfigPath, "--kubeconfig=" + filepath.Join(c.o.Dir, "attest.kubeconfig")}
	if managed {
		args = append(args, "--cert-secret="+Namespace+"/"+CertSecret, "--cert-hosts="+WebhookHost,
			"--webhook-configuration="+LocalWebhookConfiguration)
	}
	args = append(args, extra...)
	a.Process, err = StartProcess(ctx, "attest-"+a.Name, c.o.Attest, filepath.Join(c.o.Dir, "attest-"+a.Name+".log"), args...)
	return err
}

// Stop stops the process (SIGTERM, then SIGKILL after 10 s); safe on nil and twice.
func (a *Attest) Stop() {
	if a != nil {
		a.Process.Stop()
	}
}

// Kill ends the process with SIGKILL (no graceful shutdown: connections drop mid-request) and waits for it.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Readyz asks a's readiness probe, as the kubelet would, and returns the status code and body.
func (a *Attest) Readyz(ctx context.Context) (int, string, error) {
	return get(ctx, "http://"+loopback(a.ProbePort)+"/readyz")
}

// AttestReadyz asks the readiness probe of the harness's own ATTEST and returns the status code and body.
func (c *Cluster) AttestReadyz(ctx context.Context) (int, string, error) {
	return get(ctx, c.ReadyzURL())
}

// Metrics returns a's /metrics exposition.
func (a *Attest) Metrics(ctx context.Context) (string, error) {
	_, body, err := get(ctx, "http://"+loopback(a.MetricsPort)+"/metrics")
	return body, err
}

func get(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Transport{Proxy: nil, DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// WaitReady polls a's /readyz until it answers 200 or within has passed.
func (a *Attest) WaitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		code, body, err := a.Readyz(ctx)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("GET /readyz: %d %s", code, body)
		}
		if a.Exited() {
			return fmt.Errorf("attest %s exited: %s", a.Name, a.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("attest %s not ready after %s: %w\n%s", a.Name, within, err, a.Output())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// faultState is what the Cluster keeps of the processes the fault tests start beside the control plane.
type faultState struct {
	mu       sync.Mutex
	replicas []*Attest
	api      *Process // kube-apiserver once the harness has restarted it
	apiArgv  []string // its command line, read when the harness first stopped it
}

// stopReplicas stops, by PID, the replicas the tests started and have not stopped.
func (c *Cluster) stopReplicas() {
	c.faults.mu.Lock()
	replicas := c.faults.replicas
	c.faults.replicas = nil
	c.faults.mu.Unlock()
	for _, r := range replicas {
		r.Stop()
	}
}
