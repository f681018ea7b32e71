//go:build !lean

package webhook_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/tracing"
	"github.com/continuums/attest/webhook"
)

// collector is an OTLP/gRPC trace receiver on 127.0.0.1: what an OpenTelemetry Collector would get.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	got   chan struct{}
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{got: make(chan struct{}, 1)}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return c, "http://" + l.Addr().String()
}

// waitSpans waits until the collector holds a span named name, and returns every span it received.
func (c *collector) waitSpans(t *testing.T, name string) []*tracepb.Span {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		spans := slices.Clone(c.spans)
		c.mu.Unlock()
		if slices.ContainsFunc(spans, func(s *tracepb.Span) bool { return s.GetName() == name }) {
			return spans
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("no %s span within 10s; got %d spans", name, len(spans))
		}
	}
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// TestTracingSpanTree sends one admission through the handler with tracing on and checks, at a real OTLP/gRPC
// receiver, the tree: attest.admission over decode, images (one span per distinct image), one span per policy
// run, exemptions and response, all in one trace.
func TestTracingSpanTree(t *testing.T) {
	col, endpoint := startCollector(t)
	ctx := context.Background()
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: endpoint, SampleRatio: 1, Version: "test", BatchTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := compiledLibrary()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(trustedConfig), engine)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := attestation.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := attestation.NewCache(attestation.CacheOptions{Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }, Tracer: tr,
		Verifier: func(c *config.Config) admission.ImageVerifier {
			return attestation.NewVerifier(c.Trust, attestation.VerifierOptions{Cache: cache, Metrics: metrics})
		}})
	if err != nil {
		t.Fatal(err)
	}
	s := serveDecider(t, eval, webhook.HandlerOptions{Tracer: tr})
	dep := deployment("web", withContainer(ctr("app", trustedImage, privileged())), withContainer(ctr("sidecar", "registry.example.com/team/proxy:2")))
	resp := post(t, s, "/validate", mustJSON(review("uid-traced", dep)))
	if resp.review.Response.Allowed {
		t.Fatalf("privileged Deployment admitted")
	}
	spans := col.waitSpans(t, admission.StageAdmission)
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	var root *tracepb.Span
	byName := map[string][]*tracepb.Span{}
	for _, sp := range spans {
		byName[sp.GetName()] = append(byName[sp.GetName()], sp)
		if sp.GetName() == admission.StageAdmission {
			root = sp
		}
	}
	if got := attr(root, "attest.uid"); got != "uid-traced" {
		t.Errorf("root span uid %q", got)
	}
	if got := attr(root, "attest.decision"); got != admission.DecisionDenied {
		t.Errorf("root span decision %q, want %s", got, admission.DecisionDenied)
	}
	if root.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("root span kind %v", root.GetKind())
	}
	for _, sp := range spans {
		if string(sp.GetTraceId()) != string(root.GetTraceId()) {
			t.Errorf("%s is in another trace", sp.GetName())
		}
	}
	childOf := func(name string, parent *tracepb.Span) []*tracepb.Span {
		var out []*tracepb.Span
		for _, sp := range byName[name] {
			if string(sp.GetParentSpanId()) == string(parent.GetSpanId()) {
				out = append(out, sp)
			}
		}
		return out
	}
	for _, stage := range []string{admission.StageDecode, admission.StageImages, admission.StageExemptions, admission.StageResponse} {
		if n := len(childOf(stage, root)); n != 1 {
			t.Errorf("%d %s spans under %s, want 1", n, stage, admission.StageAdmission)
		}
	}
	images := childOf(admission.StageImages, root)
	if len(images) == 1 {
		verified := childOf(admission.StageVerify, images[0])
		var refs []string
		for _, v := range verified {
			refs = append(refs, attr(v, "attest.image"))
		}
		slices.Sort(refs)
		if want := []string{"registry.example.com/team/app:1.2.3", "registry.example.com/team/proxy:2"}; !slices.Equal(refs, want) {
			t.Errorf("image verification spans %v, want %v", refs, want)
		}
	}
	var policiesRun []string
	for _, sp := range childOf(admission.StagePolicy, root) {
		policiesRun = append(policiesRun, attr(sp, "attest.policy"))
		if attr(sp, "attest.policy") == "no-privileged" && sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("a violation is not a span error")
		}
	}
	if !slices.Contains(policiesRun, "no-privileged") || !slices.Contains(policiesRun, "trusted-registries") {
		t.Errorf("policy spans %v lack no-privileged or trusted-registries", policiesRun)
	}
	if len(policiesRun) != len(byName[admission.StagePolicy]) {
		t.Errorf("%d policy spans, %d of them under the admission", len(byName[admission.StagePolicy]), len(policiesRun))
	}
}
