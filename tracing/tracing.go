//go:build !lean

// Package tracing exports the stages of each admission (admission.Tracer) as OpenTelemetry spans over OTLP/gRPC,
// for `attest serve --otlp-endpoint`. It is never linked into the lean CLI.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/continuums/attest/admission"
)

// Options configure the exporter.
type Options struct {
	// Endpoint is the OTLP/gRPC collector: http://host:port (plaintext, e.g. a collector in the cluster) or
	// https://host:port (TLS with the system roots).
	Endpoint string
	// SampleRatio is the share of admissions traced, 0 < r <= 1 (parent-based: a request the API server traced
	// keeps its decision).
	SampleRatio float64
	// Version is ATTEST's version, the service.version of every span.
	Version string
	// BatchTimeout bounds how long a finished span waits before it is sent (0: the SDK's 5 s).
	BatchTimeout time.Duration
}

// Tracer is an admission.Tracer backed by an OpenTelemetry SDK tracer provider with a batching OTLP exporter.
// Within an admission (under the attest.admission span) a stage costs the request only two clock readings and a
// slot in the admission's recorder; the SDK spans are built from those timestamps after the admission has answered,
// on another goroutine, and queued for the exporter there (see README, Tracing, for what this saved).
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	pool     sync.Pool // *recorder
	mu       sync.Mutex
	building sync.WaitGroup // the admissions whose spans are being built
	shut     bool
}

var _ admission.Tracer = (*Tracer)(nil)

// New validates the endpoint and builds the exporter; it does not dial (gRPC connects lazily), so a collector
// that is down never delays start-up and never blocks an admission.
func New(ctx context.Context, o Options) (*Tracer, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint %q: %w", o.Endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("--otlp-endpoint %q: want http://HOST:PORT (plaintext) or https://HOST:PORT (TLS), e.g. http://otel-collector.monitoring:4317", o.Endpoint)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("--otlp-endpoint %q: OTLP/gRPC takes no path (%q)", o.Endpoint, u.Path)
	}
	if o.SampleRatio <= 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("--otlp-sample-ratio %v: want more than 0 and at most 1", o.SampleRatio)
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %w", o.Endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "attest"), attribute.String("service.version", o.Version)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	var batch []sdktrace.BatchSpanProcessorOption
	if o.BatchTimeout > 0 {
		batch = append(batch, sdktrace.WithBatchTimeout(o.BatchTimeout))
	}
	return newTracer(
		sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	), nil
}

// newTracer is a Tracer over a provider built with opts (the tests give an in-memory exporter and a sampler).
func newTracer(opts ...sdktrace.TracerProviderOption) *Tracer {
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/continuums/attest")}
}

// Start opens a stage's span under ctx's span. attest.admission samples and opens the admission's recorder; a
// stage under it is recorded there (nothing, when the admission is not sampled); a stage outside any admission
// (the pipeline run without the webhook) is an SDK span at once.
func (t *Tracer) Start(ctx context.Context, stage, key, value string) (context.Context, admission.Span) {
	if stage == admission.StageAdmission {
		return t.startAdmission(ctx, key, value)
	}
	switch parent := ctx.Value(recorderKey{}).(type) {
	case *stageCtx:
		return parent.rec.start(ctx, parent.idx, stage, key, value)
	case unsampled:
		return ctx, noSpan{}
	}
	var opts []trace.SpanStartOption
	if key != "" {
		opts = append(opts, trace.WithAttributes(attribute.String(key, value)))
	}
	ctx, s := t.tracer.Start(ctx, stage, opts...)
	return ctx, span{s}
}

// startAdmission asks the sampler about the admission (as the SDK would for its root span) and, when it is
// sampled, opens its recorder.
func (t *Tracer) startAdmission(ctx context.Context, key, value string) (context.Context, admission.Span) {
	now := time.Now()
	rctx, root := t.tracer.Start(ctx, admission.StageAdmission, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(now))
	if !root.IsRecording() {
		return context.WithValue(ctx, recorderKey{}, unsampled{}), noSpan{}
	}
	rec, _ := t.pool.Get().(*recorder)
	if rec == nil {
		rec = &recorder{}
	}
	rec.t, rec.ctx, rec.root, rec.closed = t, rctx, root, false
	rec.add(admission.StageAdmission, -1, now, key, value)
	sc := &stageCtx{Context: rctx, rec: rec, idx: 0}
	return sc, sc
}

// Shutdown builds the spans of the admissions that have answered, sends the spans still queued and stops the
// exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.shut = true
	t.mu.Unlock()
	t.building.Wait()
	return t.provider.Shutdown(ctx)
}

// recorderKey finds the stage a context is under: a *stageCtx, or unsampled.
type recorderKey struct{}

// unsampled marks the context of an admission the sampler left out: its stages record nothing.
type unsampled struct{}

// noSpan is the span of a stage that records nothing.
type noSpan struct{}

func (noSpan) Set(string, string) {}
func (noSpan) End(error)          {}

// stage is one recorded stage of an admission: what its span will say.
type stage struct {
	name       string
	parent     int // index in recorder.stages; -1 for the admission
	start, end time.Time
	attrs      []attribute.KeyValue
	err        error
}

// recorder holds the stages of one sampled admission until it answers; stages may start and end on several
// goroutines (images are verified concurrently; a pipeline past its budget still runs after the answer).
type recorder struct {
	t      *Tracer
	ctx    context.Context // carries root
	root   trace.Span
	mu     sync.Mutex
	stages []stage
	closed bool // the admission answered: later stages are not recorded
}

// stageCtx is both the context under a recorded stage and the stage's admission.Span: one allocation a stage.
type stageCtx struct {
	context.Context
	rec *recorder
	idx int
}

func (c *stageCtx) Value(key any) any {
	if key == (recorderKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// add appends a stage, reusing a slot (and its attribute array) of an earlier admission when the pooled recorder
// has one, and returns its index.
func (r *recorder) add(name string, parent int, start time.Time, key, value string) int {
	n := len(r.stages)
	if n < cap(r.stages) {
		r.stages = r.stages[:n+1]
	} else {
		r.stages = append(r.stages, stage{})
	}
	s := &r.stages[n]
	*s = stage{name: name, parent: parent, start: start, attrs: s.attrs[:0]}
	if key != "" {
		s.attrs = append(s.attrs, attribute.String(key, value))
	}
	return n
}

func (r *recorder) start(ctx context.Context, parent int, name, key, value string) (context.Context, admission.Span) {
	now := time.Now()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ctx, noSpan{}
	}
	idx := r.add(name, parent, now, key, value)
	r.mu.Unlock()
	sc := &stageCtx{Context: ctx, rec: r, idx: idx}
	return sc, sc
}

// Set adds an attribute to the stage.
func (c *stageCtx) Set(key, value string) {
	r := c.rec
	r.mu.Lock()
	if !r.closed {
		r.stages[c.idx].attrs = append(r.stages[c.idx].attrs, attribute.String(key, value))
	}
	r.mu.Unlock()
}

// End ends the stage; ending the admission closes the recorder and builds its spans on another goroutine.
func (c *stageCtx) End(err error) {
	now := time.Now()
	r := c.rec
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	s := &r.stages[c.idx]
	s.end, s.err = now, err
	if c.idx != 0 {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	t := r.t
	t.mu.Lock()
	if t.shut { // shutting down: build here, before the provider stops
		t.mu.Unlock()
		r.build()
		return
	}
	t.building.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.building.Done()
		r.build()
	}()
}

// errUnfinished marks a stage still running when the admission answered (the pipeline past its budget).
var errUnfinished = errors.New("still running when the admission answered")

// build turns the recorded stages into SDK spans with their recorded start and end times, and returns the
// recorder to the pool. The recorder is closed: nothing else touches it.
func (r *recorder) build() {
	ctxs := make([]context.Context, len(r.stages)) // each stage's context, the parent of its children
	ctxs[0] = r.ctx
	end := r.stages[0].end
	for i := 1; i < len(r.stages); i++ {
		s := &r.stages[i]
		var sp trace.Span
		ctxs[i], sp = r.t.tracer.Start(ctxs[s.parent], s.name, trace.WithTimestamp(s.start), trace.WithAttributes(s.attrs...))
		if s.end.IsZero() {
			s.end, s.err = end, errUnfinished
		}
		finish(sp, s.err, s.end)
	}
	r.root.SetAttributes(r.stages[0].attrs...)
	finish(r.root, r.stages[0].err, end)
	for i := range r.stages { // drop the references (errors, strings), keep the attribute arrays for the next one
		a := r.stages[i].attrs
		clear(a)
		r.stages[i] = stage{attrs: a[:0]}
	}
	r.ctx, r.root, r.stages = nil, nil, r.stages[:0]
	r.t.pool.Put(r)
}

func finish(sp trace.Span, err error, at time.Time) {
	if err != nil {
		sp.RecordError(err, trace.WithTimestamp(at))
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End(trace.WithTimestamp(at))
}

type span struct{ s trace.Span }

func (s span) Set(key, value string) { s.s.SetAttributes(attribute.String(key, value)) }

func (s span) End(err error) {
	if err != nil {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, err.Error())
	}
	s.s.End()
}
