//go:build !lean

package tracing

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/continuums/attest/certs"
)

// flakyCollector is an OTLP/gRPC trace receiver on 127.0.0.1 that answers the first failures exports with
// Unavailable, then reject (rejected spans), and records the headers and spans it received.
type flakyCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	failures int
	reject   int64
	calls    int
	spans    int
	apiKey   []string
}

func (c *flakyCollector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	c.apiKey = md.Get("api-key")
	if c.calls <= c.failures {
		return nil, status.Error(codes.Unavailable, "starting up")
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans += len(ss.GetSpans())
		}
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if c.reject > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: c.reject, ErrorMessage: "span too large"}
	}
	return resp, nil
}

// serveCollector serves c on 127.0.0.1, over TLS when cert is set, and returns its endpoint URL.
func serveCollector(t *testing.T, c *flakyCollector, cert *tls.Certificate) *url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	scheme := "http"
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})))
		scheme = "https"
	}
	s := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return &url.URL{Scheme: scheme, Host: l.Addr().String()}
}

// exportOne encodes one recorded admission and sends it through an uploader dialled to u.
func exportOne(t *testing.T, u *url.URL) error {
	t.Helper()
	g, err := dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	b := newBatch(resourceProto(nil))
	now := time.Now()
	b.add(&recorder{traceID: newTraceID(), stages: []stage{{name: "attest.admission", parent: -1, start: now, end: now}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.Export(ctx, b.request())
}

// TestExportOverGRPC: the uploader retries a collector that is starting up, sends the headers of
// OTEL_EXPORTER_OTLP_HEADERS, reports spans the collector rejected, and speaks TLS to a collector whose CA
// OTEL_EXPORTER_OTLP_CERTIFICATE names (and refuses one it cannot verify).
func TestExportOverGRPC(t *testing.T) {
	t.Run("retries and headers", func(t *testing.T) {
		t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k%201")
		c := &flakyCollector{failures: 2}
		if err := exportOne(t, serveCollector(t, c, nil)); err != nil {
			t.Fatal(err)
		}
		if c.calls != 3 || c.spans != 1 || strings.Join(c.apiKey, ",") != "k 1" {
			t.Errorf("%d calls, %d spans, api-key %q; want 3 calls (2 retried), 1 span, \"k 1\"", c.calls, c.spans, c.apiKey)
		}
	})
	t.Run("rejected spans", func(t *testing.T) {
		c := &flakyCollector{reject: 1}
		if err := exportOne(t, serveCollector(t, c, nil)); err == nil || !strings.Contains(err.Error(), "the collector rejected 1 spans: span too large") {
			t.Errorf("error %v, want the rejection", err)
		}
	})
	t.Run("not retried", func(t *testing.T) {
		u := serveCollector(t, &flakyCollector{}, nil)
		g, err := dial(u)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = g.Close() }()
		if err := g.Export(context.Background(), []byte{0xff}); status.Code(err) != codes.Internal {
			t.Errorf("a request the collector cannot decode: %v, want Internal at once", err)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		ca, err := certs.NewCA("collector CA", time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := ca.IssueServing([]string{"127.0.0.1"}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c := &flakyCollector{}
		u := serveCollector(t, c, &cert)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g, err := dial(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Export(ctx, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a collector signed by an unknown CA: %v, want a certificate error", err)
		}
		_ = g.Close()
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", caFile)
		if err := exportOne(t, u); err != nil || c.spans != 1 {
			t.Errorf("with the collector's CA: %v, %d spans", err, c.spans)
		}
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", filepath.Join(t.TempDir(), "missing.pem"))
		if _, err := dial(u); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_CERTIFICATE") {
			t.Errorf("a missing CA file: %v", err)
		}
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", filepath.Join("testdata", "..", "otlp_test.go"))
		if _, err := dial(u); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
			t.Errorf("a CA file without certificates: %v", err)
		}
	})
}
