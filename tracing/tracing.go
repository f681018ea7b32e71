//go:build !lean

// Package tracing exports the stages of each admission (admission.Tracer) as OpenTelemetry spans over OTLP/gRPC,
// for `attest serve --otlp-endpoint`. It is never linked into the lean CLI.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/continuums/attest/admission"
)

// Options configure the exporter.
type Options struct {
	// Endpoint is the OTLP/gRPC collector: http://host:port (plaintext, e.g. a collector in the cluster) or
	// https://host:port (TLS with the system roots).
	Endpoint string
	// SampleRatio is the share of admissions traced, 0 < r <= 1 (parent-based: a request already traced keeps its
	// decision).
	SampleRatio float64
	// Version is ATTEST's version, the service.version of every span.
	Version string
	// BatchTimeout bounds how long a finished admission's spans wait before they are sent (0: 5 s).
	BatchTimeout time.Duration
	// Errors, when set, hears of spans that could not be exported (collector down, queue full).
	Errors func(error)
}

const (
	defaultBatchTimeout = 5 * time.Second
	// maxBatchSpans sends a batch when it holds this many spans (about 120 admissions, 300-400 KB): four times the
	// SDK's batch, as fewer exports cost less of the webhook's cores (one-client p50 1.06x against 1.10x traced).
	maxBatchSpans = 2048
	// queuedAdmissions bounds the answered admissions waiting for the exporter (about 4,000 spans, two batches);
	// beyond it an admission's spans are dropped, never waited for.
	queuedAdmissions = 256
	// exportTimeout bounds one export, retries included.
	exportTimeout = 10 * time.Second
	scopeName     = "github.com/continuums/attest"
)

// uploader sends encoded OTLP ExportTraceServiceRequests: to a collector over gRPC, or to a test.
type uploader interface {
	Export(ctx context.Context, request []byte) error
	Close() error
}

// Tracer is an admission.Tracer that exports OTLP directly. Within an admission (a root stage, attest.admission
// for the webhook) a stage costs the request two clock readings and a slot in the admission's recorder; once the
// admission has answered, its root stage's end writes the recorded stages as OTLP spans in protobuf's wire format
// into reused buffers, and one exporter goroutine sends them in batches. Neither an OpenTelemetry SDK span nor a generated OTLP
// message is built (see README, Tracing, for what this saved); the SDK's samplers decide.
type Tracer struct {
	sampler      sdktrace.Sampler
	up           uploader
	errs         func(error)
	batchTimeout time.Duration
	res          *resourcepb.Resource

	pool sync.Pool // *recorder

	// An answered admission's spans are encoded as it ends (after its response is sent) and appended to filling;
	// a full batch waits in ready for the exporter, which wakes when one does, when half the queue waits, every
	// batchTimeout and at Shutdown: never once an admission, which on two cores delays the next admission, and
	// never to encode a batch's worth of spans at once, which delays the admissions that run meanwhile.
	mu      sync.Mutex
	filling *batch
	ready   []*batch
	spares  []*batch   // sent batches, reused
	queued  int        // admissions in filling and ready
	room    *sync.Cond // tests and benchmarks (block): an admission waiting for room in the queue
	block   bool       // tests and benchmarks: an answered admission waits for room instead of being dropped
	shut    bool
	dropped int
	wake    chan struct{} // room for one wake-up
	closing chan struct{} // closed by Shutdown
	stopped chan struct{} // closed when the exporter has sent its last batch
	cancel  context.CancelFunc
	ctx     context.Context // the exports' parent, cancelled when Shutdown runs out of time
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
	client, err := dial(u)
	if err != nil {
		return nil, err
	}
	// OTEL_RESOURCE_ATTRIBUTES (e.g. the pod's name from the downward API) first, so ATTEST's own name wins.
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithAttributes(
		attribute.String("service.name", "attest"), attribute.String("service.version", o.Version)))
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return newTracer(client, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio)), res, o), nil
}

// newTracer starts the exporter goroutine of a Tracer sending to up (the tests give a recorder and a sampler).
func newTracer(up uploader, sampler sdktrace.Sampler, res *resource.Resource, o Options) *Tracer {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tracer{
		sampler:      sampler,
		up:           up,
		errs:         o.Errors,
		batchTimeout: o.BatchTimeout,
		res:          resourceProto(res),
		wake:         make(chan struct{}, 1),
		closing:      make(chan struct{}),
		stopped:      make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
	}
	t.room = sync.NewCond(&t.mu)
	t.filling = newBatch(t.res)
	if t.batchTimeout <= 0 {
		t.batchTimeout = defaultBatchTimeout
	}
	go t.export()
	return t
}

// resourceProto is res as OTLP attributes (OTEL_RESOURCE_ATTRIBUTES' strings made valid UTF-8, so it always marshals).
func resourceProto(res *resource.Resource) *resourcepb.Resource {
	out := &resourcepb.Resource{}
	if res == nil {
		return out
	}
	for it := res.Iter(); it.Next(); {
		kv := it.Attribute()
		var v *commonpb.AnyValue
		switch kv.Value.Type() {
		case attribute.BOOL:
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: kv.Value.AsBool()}}
		case attribute.INT64:
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}}
		case attribute.FLOAT64:
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: kv.Value.AsFloat64()}}
		default:
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: validUTF8(kv.Value.String())}}
		}
		out.Attributes = append(out.Attributes, &commonpb.KeyValue{Key: validUTF8(string(kv.Key)), Value: v})
	}
	return out
}

// Start opens a stage's span under ctx's span. A stage under a recorded one is recorded in its admission's
// recorder (nothing, when the admission is not sampled); any other stage (attest.admission, or the pipeline run
// without the webhook) is a root: the sampler decides and, when sampled, it opens a recorder.
func (t *Tracer) Start(ctx context.Context, stage, key, value string) (context.Context, admission.Span) {
	switch parent := ctx.Value(recorderKey{}).(type) {
	case *stageCtx:
		return parent.start(ctx, stage, key, value)
	case unsampled:
		return ctx, noSpan{}
	}
	return t.startRoot(ctx, stage, key, value)
}

// startRoot asks the sampler about a root stage, as the SDK would for a root span, in the trace of ctx's span
// when it carries one, and when it is sampled opens its recorder.
func (t *Tracer) startRoot(ctx context.Context, stage, key, value string) (context.Context, admission.Span) {
	now := time.Now()
	kind := trace.SpanKindInternal
	if stage == admission.StageAdmission {
		kind = trace.SpanKindServer
	}
	parent := trace.SpanContextFromContext(ctx)
	var tid trace.TraceID
	if parent.IsValid() {
		tid = parent.TraceID()
	} else {
		tid = newTraceID()
	}
	if t.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: stage, Kind: kind}).Decision != sdktrace.RecordAndSample {
		return context.WithValue(ctx, recorderKey{}, unsampled{}), noSpan{}
	}
	rec, _ := t.pool.Get().(*recorder)
	if rec == nil {
		rec = &recorder{}
	}
	rec.mu.Lock() // a stage of the recorder's last admission may still be running, and look
	rec.t, rec.traceID, rec.kind, rec.closed = t, tid, kind, false
	rec.parent = trace.SpanID{}
	if parent.IsValid() {
		rec.parent = parent.SpanID()
	}
	rec.add(stage, -1, now, key, value)
	sc := &stageCtx{Context: ctx, rec: rec, idx: 0, gen: rec.gen}
	rec.mu.Unlock()
	return sc, sc
}

func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		putUint64(id[:8], rand.Uint64())
		putUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// Shutdown sends the spans of the admissions that have answered, within ctx, and stops the exporter; spans of
// admissions answering later are dropped.
func (t *Tracer) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.shut {
		t.mu.Unlock()
		return nil
	}
	t.shut = true
	t.room.Broadcast()
	t.mu.Unlock()
	close(t.closing)
	var err error
	select {
	case <-t.stopped:
	case <-ctx.Done():
		t.cancel()
		<-t.stopped
		err = fmt.Errorf("tracing: spans still queued at shutdown: %w", ctx.Err())
	}
	t.cancel()
	return errors.Join(err, t.up.Close())
}

// enqueue encodes an answered admission's spans into the filling batch, or drops them when the exporter is that far
// behind; it wakes the exporter only when a batch fills or half the queue waits.
func (t *Tracer) enqueue(r *recorder) {
	r.encode()
	t.mu.Lock()
	for t.block && !t.shut && t.queued >= queuedAdmissions {
		t.room.Wait()
	}
	if t.shut || t.queued >= queuedAdmissions {
		if !t.shut {
			t.dropped++
		}
		t.mu.Unlock()
		r.release()
		return
	}
	wake := false
	if !t.filling.empty() && t.filling.len()+r.encodedSpans > maxBatchSpans {
		t.ready = append(t.ready, t.filling)
		t.filling = t.spare()
		wake = true
	}
	t.filling.append(r)
	t.queued++
	// Half the queue (admissions of few stages, a batch not yet full) wakes the exporter too.
	wake = wake || t.queued == queuedAdmissions/2
	t.mu.Unlock()
	r.release()
	if wake {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// spare is an empty batch, a sent one when there is one; t.mu is held.
func (t *Tracer) spare() *batch {
	if n := len(t.spares); n > 0 {
		b := t.spares[n-1]
		t.spares = t.spares[:n-1]
		return b
	}
	return newBatch(t.res)
}

// export is the exporter goroutine: it sends the full batches as they come; when half the queue waits in a batch
// not yet full it takes that batch's spans into one of its own, which it sends when the next would overflow it,
// every batchTimeout and at Shutdown, so that admissions of few stages still make batches of maxBatchSpans.
func (t *Tracer) export() {
	defer close(t.stopped)
	tick := time.NewTicker(t.batchTimeout)
	defer tick.Stop()
	held := newBatch(t.res)
	var full []*batch
	for {
		flush := true
		select {
		case <-t.wake:
			flush = false
		case <-tick.C:
		case <-t.closing:
		}
		t.mu.Lock()
		full = append(full[:0], t.ready...)
		clear(t.ready)
		t.ready = t.ready[:0]
		for _, b := range full {
			t.queued -= b.admissions
		}
		var part *batch
		if !t.filling.empty() && (flush || t.shut || t.queued >= queuedAdmissions/2) {
			part = t.filling
			t.queued -= part.admissions
			t.filling = t.spare()
		}
		shut, dropped := t.shut, t.dropped
		t.dropped = 0
		t.room.Broadcast()
		t.mu.Unlock()
		if dropped > 0 {
			t.report(fmt.Errorf("tracing: the spans of %d admissions were dropped: the exporter's queue was full", dropped))
		}
		for _, b := range full {
			t.send(b)
		}
		if part != nil {
			if held.len()+part.len() > maxBatchSpans {
				t.send(held)
			}
			held.merge(part)
			part.reset()
			full = append(full, part)
		}
		if flush || shut {
			t.send(held)
		}
		t.mu.Lock()
		t.spares = append(t.spares, full...)
		t.mu.Unlock()
		clear(full)
		if shut {
			return
		}
	}
}

// send uploads the batch, if it holds any span, and empties it for reuse; a failure is reported, never retried
// beyond the client's own retries.
func (t *Tracer) send(b *batch) {
	if b.empty() {
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, exportTimeout)
	err := t.up.Export(ctx, b.request())
	cancel()
	if err != nil {
		t.report(fmt.Errorf("tracing: %d spans not exported: %w", b.len(), err))
		b.out = nil // the failed call's transport may still hold the request: not reused
	}
	b.reset()
}

func (t *Tracer) report(err error) {
	if t.errs != nil {
		t.errs(err)
	}
}

// recorderKey finds the stage a context is under: a *stageCtx, or unsampled.
type recorderKey struct{}

// unsampled marks the context of an admission the sampler left out: its stages record nothing.
type unsampled struct{}

// noSpan is the span of a stage that records nothing.
type noSpan struct{}

func (noSpan) Set(string, string) {}
func (noSpan) End(error)          {}

// attr is one string attribute of a stage.
type attr struct{ key, value string }

// stage is one recorded stage of an admission: what its span will say.
type stage struct {
	name       string
	parent     int // index in recorder.stages; -1 for the root
	start, end time.Time
	attrs      []attr
	err        error
}

// recorder holds the stages of one sampled admission until its root ends and encodes them; stages may start and end
// on several goroutines (images are verified concurrently; a pipeline past its budget still runs after the answer).
type recorder struct {
	t       *Tracer
	traceID trace.TraceID
	parent  trace.SpanID // the root's parent: the span ctx carried, if any
	kind    trace.SpanKind
	mu      sync.Mutex
	stages  []stage
	closed  bool   // the root ended (the admission answered): later stages are not recorded
	gen     uint64 // counts the admissions the pooled recorder has held: a stage of an earlier one records nothing

	// encode's output and buffers, kept with the pooled recorder: the spans as OTLP, how many, their IDs and one
	// span being written.
	encoded      []byte
	encodedSpans int
	ids          []trace.SpanID
	span         []byte
}

// stageCtx is both the context under a recorded stage and the stage's admission.Span: one allocation a stage.
type stageCtx struct {
	context.Context
	rec *recorder
	idx int
	gen uint64 // the recorder's admission this stage belongs to
}

// live says whether the stage's admission still records; r.mu is held.
func (c *stageCtx) live() bool { return !c.rec.closed && c.rec.gen == c.gen }

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
		s.attrs = append(s.attrs, attr{key, value})
	}
	return n
}

// start records a stage under the stage parent of the same admission.
func (parent *stageCtx) start(ctx context.Context, name, key, value string) (context.Context, admission.Span) {
	now := time.Now()
	r := parent.rec
	r.mu.Lock()
	if !parent.live() {
		r.mu.Unlock()
		return ctx, noSpan{}
	}
	idx := r.add(name, parent.idx, now, key, value)
	r.mu.Unlock()
	sc := &stageCtx{Context: ctx, rec: r, idx: idx, gen: parent.gen}
	return sc, sc
}

// Set adds an attribute to the stage.
func (c *stageCtx) Set(key, value string) {
	r := c.rec
	r.mu.Lock()
	if c.live() {
		r.stages[c.idx].attrs = append(r.stages[c.idx].attrs, attr{key, value})
	}
	r.mu.Unlock()
}

// End ends the stage; ending the root closes the recorder and hands it to the exporter.
func (c *stageCtx) End(err error) {
	now := time.Now()
	r := c.rec
	r.mu.Lock()
	if !c.live() {
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
	r.t.enqueue(r)
}

// release returns a closed recorder to the pool, dropping its references (errors, strings) but keeping its
// attribute arrays for the next admission.
func (r *recorder) release() {
	r.mu.Lock()
	r.gen++
	for i := range r.stages {
		a := r.stages[i].attrs
		clear(a)
		r.stages[i] = stage{attrs: a[:0]}
	}
	r.stages = r.stages[:0]
	t := r.t
	r.t = nil
	r.mu.Unlock()
	t.pool.Put(r)
}

// errUnfinished marks a stage still running when the admission answered (the pipeline past its budget).
var errUnfinished = errors.New("still running when the admission answered")
