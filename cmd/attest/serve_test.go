//go:build !lean

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/webhook/webhooktest"
)

// TestServePorts runs `attest serve` as main wires it, on three loopback ports: the webhook port answers the
// admission paths only and HTTP/1.1 only, /metrics is on the metrics port and /healthz and /readyz on the probe
// port, both plain HTTP.
func TestServePorts(t *testing.T) {
	sv := startServe(t)
	client, webhookURL, metricsURL, probeURL := sv.client, sv.webhookURL, sv.metricsURL, sv.probeURL
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}

	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		if status, body := get(webhookURL + path); status != http.StatusNotFound {
			t.Errorf("GET %s on the webhook port = %d %q, want 404", path, status, body)
		}
	}
	if status, body := get(probeURL + "/healthz"); status != http.StatusOK || body != "ok" {
		t.Errorf("GET /healthz on the probe port = %d %q, want 200 ok", status, body)
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "default"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "gcr.io/company/app:1",
			"securityContext": map[string]any{"privileged": true}}}}}
	if resp := postReview(t, client, webhookURL+"/validate", admission.ObjectInput(pod, "default", time.Now()), pod); resp.Allowed {
		t.Errorf("a privileged Pod was admitted: %+v", resp)
	}
	status, body := get(metricsURL + "/metrics")
	for _, want := range []string{
		"\nattest_admission_requests_total{", "\nattest_policy_evaluations_total{", "\nattest_policy_violation_severity{",
		"\ncontroller_runtime_webhook_requests_total{", "\ngo_goroutines ",
	} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /metrics on the metrics port = %d without %s", status, strings.TrimSpace(want))
		}
	}
	conn, err := tls.Dial("tcp", sv.webhookAddr, &tls.Config{RootCAs: sv.pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("ALPN on the webhook port = %q, want http/1.1 (HTTP/2 is off without --enable-http2)", got)
	}
	_ = conn.Close()
}

func TestServeFlagErrors(t *testing.T) {
	t.Setenv("GOGC", "100")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "TLS 1.1", args: []string{"--tls-min-version", "1.1"}, wantErr: `--tls-min-version: TLS minimum version "1.1": want 1.2 or 1.3`},
		{name: "metrics address without a port", args: []string{"--metrics-bind-address", "8080"},
			wantErr: `metrics bind address "8080": want HOST:PORT, :PORT or 0 to disable`},
		{name: "metrics and probes on one port", args: []string{"--metrics-bind-address", "127.0.0.1:8080", "--health-probe-bind-address", "127.0.0.1:8080"},
			wantErr: "metrics and health probe both bind 127.0.0.1:8080"},
		{name: "pprof address without a port", args: []string{"--pprof-bind-address", "localhost"},
			wantErr: `pprof bind address "localhost": want HOST:PORT, :PORT or 0 to disable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := attest(t, "", append([]string{"serve", "--cert-dir", t.TempDir()}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("attest serve %s = exit %d, stderr:\n%s\nwant exit 2 and %q", strings.Join(tt.args, " "), code, stderr, tt.wantErr)
			}
		})
	}
}

// servedForTest is an `attest serve` run by startServe.
type servedForTest struct {
	webhookAddr                      string // host:port
	webhookURL, metricsURL, probeURL string
	client                           *http.Client
	pool                             *x509.CertPool // trusts the serving certificate
}

// startServe runs `attest serve` as main wires it, with args added, on three free loopback ports with a fresh
// certificate, until the test ends (it must then exit 0), and returns once the probe port's /readyz answers 200.
func startServe(t *testing.T, args ...string) servedForTest {
	t.Helper()
	t.Setenv("GOGC", "100") // keeps serve's GC tuning out of the test process
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	dir := t.TempDir()
	pool, err := webhooktest.WriteServingCert(dir, webhooktest.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := webhooktest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(port int) string { return net.JoinHostPort(webhooktest.Loopback, strconv.Itoa(port)) }
	sv := servedForTest{webhookAddr: addr(ports[0]), pool: pool, webhookURL: "https://" + addr(ports[0]), metricsURL: "http://" + addr(ports[1]), probeURL: "http://" + addr(ports[2]),
		client: webhooktest.Client(pool)}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr strings.Builder
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append([]string{"serve", "--host", webhooktest.Loopback, "--port", strconv.Itoa(ports[0]), "--cert-dir", dir,
			"--metrics-bind-address", addr(ports[1]), "--health-probe-bind-address", addr(ports[2])}, args...), strings.NewReader(""), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		sv.client.CloseIdleConnections()
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("attest serve exited %d after its context ended:\n%s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := sv.client.Get(sv.probeURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sv
			}
		}
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("attest serve exited %d before it was ready:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe port's /readyz did not answer 200 within 2 minutes (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
