package webhook_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

func TestHealthAndReadiness(t *testing.T) {
	eval := newEvaluator(t, trustedConfig, "")
	validate := newHandler(t, webhook.HandlerOptions{Decider: eval})
	mutate := newHandler(t, webhook.HandlerOptions{Mutating: true, Decider: eval})
	ready := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate,
		Ready: func() error { return nil }})
	unready := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate,
		Ready: func() error { return errors.New("no configuration loaded") }})
	noCheck := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate})
	tests := []struct {
		name       string
		server     *webhooktest.Served
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "healthz", server: ready, path: "/healthz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "readyz", server: ready, path: "/readyz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "readyz without a readiness check", server: noCheck, path: "/readyz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "healthz while not ready", server: unready, path: "/healthz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "readyz while not ready", server: unready, path: "/readyz", wantStatus: http.StatusServiceUnavailable,
			wantBody: "not ready: no configuration loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, tt.server, tt.path)
			if status != tt.wantStatus || strings.TrimSpace(body) != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestNewServerValidatesOptions(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Mutating: true, Decider: newEvaluator(t, trustedConfig, "")})
	tests := []struct {
		name    string
		opts    webhook.ServerOptions
		wantErr string
	}{
		{name: "no validate handler", opts: webhook.ServerOptions{Mutate: h, CertDir: t.TempDir()}, wantErr: "validate and mutate handlers are required"},
		{name: "no mutate handler", opts: webhook.ServerOptions{Validate: h, CertDir: t.TempDir()}, wantErr: "validate and mutate handlers are required"},
		{name: "no certificate directory", opts: webhook.ServerOptions{Validate: h, Mutate: h}, wantErr: "a certificate directory is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewServer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewServer error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg, metrics := newRegistry(t)
	eval := newEvaluator(t, trustedConfig, "")
	validate := newHandler(t, webhook.HandlerOptions{Decider: eval, Metrics: metrics})
	mutate := newHandler(t, webhook.HandlerOptions{Mutating: true, Decider: eval, Metrics: metrics})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate, Gatherer: reg})

	post(t, s, "/validate", mustJSON(review("uid-1", privilegedDeployment())))
	post(t, s, "/validate", mustJSON(review("uid-2", privilegedDeployment(), dryRun())))
	post(t, s, "/validate", mustJSON(review("uid-3", compliantDeployment())))
	post(t, s, "/validate", []byte("not an AdmissionReview"))
	// The mutating path is not counted: every request is counted once, by /validate.
	post(t, s, "/mutate", mustJSON(review("uid-4", privilegedDeployment())))
	post(t, s, "/mutate", []byte("not an AdmissionReview"))

	status, body := get(t, s, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d:\n%s", status, body)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		lines[l] = true
	}
	// Three requests were evaluated by both library policies; no-privileged failed two of them.
	tests := []struct {
		name string
		line string // a whole sample line, or a prefix ending in "," or "{"
	}{
		{"no-privileged failed", `attest_policy_evaluations_total{policy="no-privileged",result="failed"} 2`},
		{"no-privileged passed", `attest_policy_evaluations_total{policy="no-privileged",result="passed"} 1`},
		{"trusted-registries passed", `attest_policy_evaluations_total{policy="trusted-registries",result="passed"} 3`},
		{"critical violations", `attest_policy_violation_severity{policy="no-privileged",severity="critical"} 2`},
		{"opa evaluation buckets", `attest_policy_evaluation_duration_seconds_bucket{engine="opa",`},
		{"opa evaluations counted", `attest_policy_evaluation_duration_seconds_count{engine="opa"} 6`},
		{"denied request", `attest_admission_requests_total{decision="denied",dry_run="false",kind="Deployment",operation="CREATE"} 1`},
		{"denied dry-run request", `attest_admission_requests_total{decision="denied",dry_run="true",kind="Deployment",operation="CREATE"} 1`},
		{"allowed request", `attest_admission_requests_total{decision="allowed",dry_run="false",kind="Deployment",operation="CREATE"} 1`},
		{"unreadable request", `attest_admission_requests_total{decision="error",dry_run="false",kind="unknown",operation="unknown"} 1`},
		{"request latency", `attest_admission_request_duration_seconds_count{decision="denied",kind="Deployment",operation="CREATE"} 2`},
		{"Go runtime series of the passed gatherer", `go_goroutines `},
		{"controller-runtime's webhook series", `controller_runtime_webhook_requests_total{code="200",webhook="/validate"} `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasSuffix(tt.line, ",") || strings.HasSuffix(tt.line, " ") {
				if !strings.Contains(body, "\n"+tt.line) {
					t.Errorf("/metrics has no sample starting %s", tt.line)
				}
				return
			}
			if !lines[tt.line] {
				t.Errorf("/metrics has no line %s; series of that name:\n%s", tt.line, grepPrefix(body, tt.line[:strings.IndexAny(tt.line, "{ ")]))
			}
		})
	}
}

func grepPrefix(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricLabelsBounded posts reviews with made-up kinds and operations: anyone who reaches the port can, so the
// label values must stay bounded.
func TestMetricLabelsBounded(t *testing.T) {
	reg, metrics := newRegistry(t)
	validate := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, ""), Metrics: metrics})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: validate, Gatherer: reg})
	for i := range 100 {
		obj := map[string]any{"apiVersion": "example.com/v1", "kind": fmt.Sprintf("Made%03d", i), "metadata": map[string]any{"name": "x"}}
		post(t, s, "/validate", mustJSON(review(fmt.Sprintf("uid-%d", i), obj, operation(admissionv1.Operation(fmt.Sprintf("OP%d", i))))))
	}
	_, body := get(t, s, "/metrics")
	kinds, ops := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "attest_admission_requests_total{") {
			continue
		}
		kinds[labelValue(l, "kind")] = true
		ops[labelValue(l, "operation")] = true
	}
	if len(kinds) > 65 || !kinds["other"] {
		t.Errorf("%d kind label values (want at most 64 and \"other\")", len(kinds))
	}
	if len(ops) != 1 || !ops["unknown"] {
		t.Errorf("operation label values = %v, want only unknown", ops)
	}
}

func labelValue(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestRotatedCertificateIsServedWithoutRestart writes a certificate from a new CA into the running server's
// directory: clients that trust only the new CA get through once the watcher has picked it up.
func TestRotatedCertificateIsServedWithoutRestart(t *testing.T) {
	validate := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: validate})
	pool, err := webhooktest.WriteServingCert(s.CertDir, webhooktest.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	rotated := webhooktest.Client(pool)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := rotated.Get(s.URL + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was not served within 30s: %v", err)
		}
		rotated.CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
	}
	s.Client.CloseIdleConnections()
	if resp, err := s.Client.Get(s.URL + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a client trusting only the old CA still connects after rotation")
	}
}
