package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
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
		{name: "anything else", server: ready, path: "/metrics", wantStatus: http.StatusNotFound, wantBody: "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.HasPrefix(tt.server.ProbeURL, "http://") {
				t.Fatalf("probe URL %q is not plain HTTP", tt.server.ProbeURL)
			}
			status, body := get(t, tt.server, tt.server.ProbeURL+tt.path)
			if status != tt.wantStatus || strings.TrimSpace(body) != tt.wantBody {
				t.Errorf("GET %s on the probe port = %d %q, want %d %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// TestReadinessWaitsForTheWebhookPort holds the TLS port back, as attest serve does while its certificate is
// being issued: the probe port answers at once, live but not ready, and ready once the TLS port accepts.
func TestReadinessWaitsForTheWebhookPort(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	written := make(chan struct{})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h, CertificatesWritten: written,
		Ready: func() error { return nil }})
	if status, body := get(t, s, s.ProbeURL+"/healthz"); status != http.StatusOK {
		t.Errorf("GET /healthz before the TLS port opens = %d %q, want 200", status, body)
	}
	status, body := get(t, s, s.ProbeURL+"/readyz")
	if want := "not ready: webhook server has not been started yet"; status != http.StatusServiceUnavailable || strings.TrimSpace(body) != want {
		t.Errorf("GET /readyz before the TLS port opens = %d %q, want 503 %q", status, body, want)
	}
	if _, err := s.Client.Get(s.URL + "/validate"); err == nil {
		t.Error("the TLS port accepts before the certificates are written")
	}
	close(written)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := get(t, s, s.ProbeURL+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz 30s after the certificates were written = %d %q", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookPortServesAdmissionPathsOnly: the port the API server calls answers the four admission paths and
// nothing else; metrics and probes are on their own ports.
func TestWebhookPortServesAdmissionPathsOnly(t *testing.T) {
	reg, metrics := newRegistry(t)
	eval := newEvaluator(t, trustedConfig, "")
	validate := newHandler(t, webhook.HandlerOptions{Decider: eval, Metrics: metrics})
	mutate := newHandler(t, webhook.HandlerOptions{Mutating: true, Decider: eval, Metrics: metrics})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate, Gatherer: reg, Ready: func() error { return nil }})
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/", "/debug/pprof/", "/validate/x"} {
		t.Run("GET "+path, func(t *testing.T) {
			if status, body := get(t, s, s.URL+path); status != http.StatusNotFound {
				t.Errorf("GET %s on the webhook port = %d %q, want 404", path, status, body)
			}
		})
	}
	for _, path := range []string{"/validate", "/mutate", "/validate-policy-resources", "/mutate-policy-resources"} {
		t.Run("POST "+path, func(t *testing.T) {
			a := post(t, s, path, mustJSON(review("uid-"+path, compliantDeployment())))
			if a.status != http.StatusOK || a.review.Response == nil || !a.review.Response.Allowed {
				t.Errorf("POST %s on the webhook port = %d %+v, want an allowed AdmissionReview", path, a.status, a.review.Response)
			}
		})
	}
	t.Run("metrics port", func(t *testing.T) {
		status, body := get(t, s, s.MetricsURL+"/metrics")
		if status != http.StatusOK || !strings.Contains(body, "\nattest_admission_requests_total{") {
			t.Errorf("GET /metrics on the metrics port = %d without attest_admission_requests_total:\n%.2000s", status, body)
		}
		if status, _ := get(t, s, s.MetricsURL+"/readyz"); status != http.StatusNotFound {
			t.Errorf("GET /readyz on the metrics port = %d, want 404", status)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		off := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate, MetricsBindAddress: "0", HealthProbeBindAddress: "0"})
		if off.MetricsURL != "" || off.ProbeURL != "" {
			t.Errorf("metrics %q and probe %q URLs with both disabled", off.MetricsURL, off.ProbeURL)
		}
		if status, _ := get(t, off, off.URL+"/metrics"); status != http.StatusNotFound {
			t.Errorf("GET /metrics on the webhook port with metrics disabled = %d, want 404", status)
		}
	})
}

// TestPprofPort: --pprof-bind-address serves Go's profiles on a port of their own, and only when set.
func TestPprofPort(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	port, err := webhooktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(webhooktest.Loopback, strconv.Itoa(port))
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h, PprofBindAddress: addr})
	status, body := get(t, s, "http://"+addr+"/debug/pprof/heap?debug=1")
	if status != http.StatusOK || !strings.HasPrefix(body, "heap profile:") {
		t.Errorf("GET /debug/pprof/heap?debug=1 on the pprof port = %d %.200q, want 200 and a heap profile", status, body)
	}
	if status, body := get(t, s, "http://"+addr+"/debug/pprof/goroutine?debug=1"); status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine?debug=1 = %d %.200q, want a goroutine profile", status, body)
	}
	for _, base := range []string{s.URL, s.MetricsURL, s.ProbeURL} {
		if status, _ := get(t, s, base+"/debug/pprof/heap"); status != http.StatusNotFound {
			t.Errorf("GET %s/debug/pprof/heap = %d, want 404: profiles only on their own port", base, status)
		}
	}
	off := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h})
	for _, base := range []string{off.URL, off.MetricsURL, off.ProbeURL} {
		if status, _ := get(t, off, base+"/debug/pprof/"); status != http.StatusNotFound {
			t.Errorf("without a pprof address, GET %s/debug/pprof/ = %d, want 404", base, status)
		}
	}
}

func TestNewServerValidatesOptions(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Mutating: true, Decider: newEvaluator(t, trustedConfig, "")})
	dir := t.TempDir()
	tests := []struct {
		name    string
		opts    webhook.ServerOptions
		wantErr string
	}{
		{name: "no validate handler", opts: webhook.ServerOptions{Mutate: h, CertDir: dir}, wantErr: "validate and mutate handlers are required"},
		{name: "no mutate handler", opts: webhook.ServerOptions{Validate: h, CertDir: dir}, wantErr: "validate and mutate handlers are required"},
		{name: "no certificate directory", opts: webhook.ServerOptions{Validate: h, Mutate: h}, wantErr: "a certificate directory is required"},
		{name: "TLS 1.1", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, TLSMinVersion: tls.VersionTLS11},
			wantErr: "TLS minimum version TLS 1.1 is not accepted: want TLS 1.2 or 1.3"},
		{name: "metrics address without a port", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, MetricsBindAddress: "8080"},
			wantErr: `metrics bind address "8080": want HOST:PORT, :PORT or 0 to disable`},
		{name: "probe address without a port", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, HealthProbeBindAddress: "localhost"},
			wantErr: `health probe bind address "localhost": want HOST:PORT, :PORT or 0 to disable`},
		{name: "metrics and probes on one port", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, MetricsBindAddress: ":8080", HealthProbeBindAddress: ":8080"},
			wantErr: "metrics and health probe both bind :8080; give them separate ports"},
		{name: "pprof address without a port", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, PprofBindAddress: "6060"},
			wantErr: `pprof bind address "6060": want HOST:PORT, :PORT or 0 to disable`},
		{name: "pprof and probes on one port", opts: webhook.ServerOptions{Validate: h, Mutate: h, CertDir: dir, HealthProbeBindAddress: "127.0.0.1:8081", PprofBindAddress: "127.0.0.1:8081"},
			wantErr: "health probe and pprof both bind 127.0.0.1:8081; give them separate ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewServer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewServer error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestStartFailsWhenAPortIsTaken: a taken metrics or probe port stops Start at once with the listener named.
func TestStartFailsWhenAPortIsTaken(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	taken, err := net.Listen("tcp", webhooktest.Loopback+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	port, err := webhooktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, wantErr string
		opts          webhook.ServerOptions
	}{
		{name: "metrics", wantErr: "metrics server: listen tcp " + taken.Addr().String(),
			opts: webhook.ServerOptions{MetricsBindAddress: taken.Addr().String(), HealthProbeBindAddress: "0"}},
		{name: "probes", wantErr: "health probe server: listen tcp " + taken.Addr().String(),
			opts: webhook.ServerOptions{MetricsBindAddress: "0", HealthProbeBindAddress: taken.Addr().String()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.Validate, o.Mutate, o.CertDir, o.Host, o.Port = h, h, t.TempDir(), webhooktest.Loopback, port
			srv, err := webhook.NewServer(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Start(ctx); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestTLSVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    uint16
		wantErr bool
	}{
		{in: "1.2", want: tls.VersionTLS12},
		{in: "1.3", want: tls.VersionTLS13},
		{in: "VersionTLS12", want: tls.VersionTLS12},
		{in: "VersionTLS13", want: tls.VersionTLS13},
		{in: "1.1", wantErr: true},
		{in: "1.0", wantErr: true},
		{in: "VersionTLS11", wantErr: true},
		{in: "", wantErr: true},
		{in: "tls1.2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := webhook.TLSVersion(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("TLSVersion(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestTLSVersions connects with clients pinned to one TLS version: TLS 1.2 and 1.3 are accepted by default, 1.0
// and 1.1 refused, and with TLS 1.3 as the minimum only 1.3 is accepted.
func TestTLSVersions(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	byDefault := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h})
	tls13 := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h, TLSMinVersion: tls.VersionTLS13})
	tests := []struct {
		name    string
		server  *webhooktest.Served
		version uint16
		accept  bool
	}{
		{"TLS 1.0 refused", byDefault, tls.VersionTLS10, false},
		{"TLS 1.1 refused", byDefault, tls.VersionTLS11, false},
		{"TLS 1.2 accepted", byDefault, tls.VersionTLS12, true},
		{"TLS 1.3 accepted", byDefault, tls.VersionTLS13, true},
		{"TLS 1.2 refused when 1.3 is the minimum", tls13, tls.VersionTLS12, false},
		{"TLS 1.3 accepted when it is the minimum", tls13, tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, err := handshake(tt.server, &tls.Config{MinVersion: tt.version, MaxVersion: tt.version})
			switch {
			case tt.accept && err != nil:
				t.Errorf("%s handshake failed: %v", tls.VersionName(tt.version), err)
			case tt.accept && state.Version != tt.version:
				t.Errorf("negotiated %s, want %s", tls.VersionName(state.Version), tls.VersionName(tt.version))
			case !tt.accept && err == nil:
				t.Errorf("%s handshake succeeded, want it refused", tls.VersionName(tt.version))
			}
		})
	}
}

// TestCipherSuites: the server keeps Go's default suites, so a TLS 1.2 client offering only what Go calls
// insecure (RSA key exchange, RC4, 3DES, CBC with SHA-256) is refused, and a default client gets an ECDHE AEAD suite.
func TestCipherSuites(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h})
	var insecure []uint16
	for _, c := range tls.InsecureCipherSuites() {
		insecure = append(insecure, c.ID)
	}
	if _, err := handshake(s, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: insecure}); err == nil {
		t.Error("a TLS 1.2 client offering only insecure cipher suites was accepted")
	}
	state, err := handshake(s, &tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	name := tls.CipherSuiteName(state.CipherSuite)
	aead := strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")
	if !strings.HasPrefix(name, "TLS_ECDHE_") || !aead {
		t.Errorf("TLS 1.2 negotiated %s, want an ECDHE AEAD suite", name)
	}
}

// TestHTTP2 asks for HTTP/2 as the API server's client does: by default the server offers only HTTP/1.1
// (CVE-2023-44487), with EnableHTTP2 it speaks HTTP/2.
func TestHTTP2(t *testing.T) {
	h := newHandler(t, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")})
	tests := []struct {
		name      string
		enable    bool
		wantALPN  string
		wantProto string
	}{
		{name: "off by default", wantALPN: "http/1.1", wantProto: "HTTP/1.1"},
		{name: "enabled", enable: true, wantALPN: "h2", wantProto: "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := webhooktest.Serve(t, webhook.ServerOptions{Validate: h, Mutate: h, EnableHTTP2: tt.enable})
			state, err := handshake(s, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			if state.NegotiatedProtocol != tt.wantALPN {
				t.Errorf("ALPN negotiated %q, want %q", state.NegotiatedProtocol, tt.wantALPN)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			req, err := http.NewRequest(http.MethodPost, s.URL+"/validate", bytes.NewReader(mustJSON(review("uid-h2", compliantDeployment()))))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.Proto != tt.wantProto || resp.StatusCode != http.StatusOK {
				t.Errorf("POST /validate from an HTTP/2-capable client = %s %d, want %s 200", resp.Proto, resp.StatusCode, tt.wantProto)
			}
		})
	}
}

// handshake dials the webhook port with cfg (trusting s's CA) and returns the connection state.
func handshake(s *webhooktest.Served, cfg *tls.Config) (tls.ConnectionState, error) {
	cfg = cfg.Clone()
	cfg.RootCAs = s.Pool
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "https://"))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer func() { _ = conn.Close() }()
	return conn.(*tls.Conn).ConnectionState(), nil
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

	status, body := get(t, s, s.MetricsURL+"/metrics")
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
	_, body := get(t, s, s.MetricsURL+"/metrics")
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
		resp, err := rotated.Get(s.URL + "/validate")
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
	if resp, err := s.Client.Get(s.URL + "/validate"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a client trusting only the old CA still connects after rotation")
	}
}
