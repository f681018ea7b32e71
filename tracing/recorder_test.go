//go:build !lean

package tracing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/continuums/attest/admission"
)

// memUploader decodes every request with the generated OTLP messages and keeps the spans.
type memUploader struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	calls int
	most  int // the most spans in one upload
	fail  error
	// gate, when set, is received from before each upload returns (unless the upload's context ends first);
	// entered, when it has room, hears of an upload as it starts.
	gate    chan struct{}
	entered chan struct{}
}

func (m *memUploader) Export(ctx context.Context, request []byte) error {
	select {
	case m.entered <- struct{}{}:
	default:
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(request, &req); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	n := 0
	defer func() { m.most = max(m.most, n) }()
	for _, r := range req.GetResourceSpans() {
		for _, ss := range r.GetScopeSpans() {
			if ss.GetScope().GetName() != scopeName {
				return errors.New("scope " + ss.GetScope().GetName())
			}
			for _, s := range ss.GetSpans() {
				m.spans = append(m.spans, s)
				n++
			}
		}
	}
	return m.fail
}

func (m *memUploader) Close() error { return nil }

// memTracer is a Tracer whose answered admissions wait for the exporter (none is dropped) and whose spans are kept.
func memTracer(sampler sdktrace.Sampler) (*Tracer, *memUploader) {
	mem := &memUploader{}
	tr := newTracer(mem, sampler, nil, Options{BatchTimeout: time.Millisecond})
	tr.block = true
	return tr, mem
}

// spans shuts the tracer down, which sends every answered admission, and returns the spans by name.
func spans(t *testing.T, tr *Tracer, mem *memUploader) map[string][]*tracepb.Span {
	t.Helper()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string][]*tracepb.Span{}
	for _, s := range mem.spans {
		out[s.GetName()] = append(out[s.GetName()], s)
	}
	return out
}

func attrOf(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// admit records one admission as the webhook and the pipeline do: decode, images with one verification, a policy
// that failed to evaluate, and the decision; it returns when the admission answered.
func admit(tr *Tracer, uid string) {
	admitUnder(context.Background(), tr, uid, 0)
}

// admitUnder admits under ctx; the image's verification lasts at least pause.
func admitUnder(ctx context.Context, tr *Tracer, uid string, pause time.Duration) {
	ctx, root := tr.Start(ctx, admission.StageAdmission, "http.route", "/validate")
	_, decode := tr.Start(ctx, admission.StageDecode, "", "")
	decode.End(nil)
	root.Set("attest.uid", uid)
	ictx, images := tr.Start(ctx, admission.StageImages, "", "")
	_, verify := tr.Start(ictx, admission.StageVerify, "attest.image", "registry.example.com/app:"+uid)
	verify.Set("attest.digest", "sha256:"+uid)
	time.Sleep(pause)
	verify.End(nil)
	images.End(nil)
	_, policy := tr.Start(ctx, admission.StagePolicy, "attest.policy", "no-privileged")
	policy.End(errors.New("rego: undefined function"))
	root.Set("attest.decision", admission.DecisionDenied)
	root.End(nil)
}

func spanTime(ns uint64) time.Time { return time.Unix(0, int64(ns)) }

// TestRecordedSpans: the exported spans carry the tree, the recorded times, the attributes and errors, and neither
// a pooled recorder nor a reused span message brings anything of the admission before into the next one.
func TestRecordedSpans(t *testing.T) {
	tr, mem := memTracer(sdktrace.AlwaysSample())
	admitUnder(context.Background(), tr, "one", time.Millisecond)
	admitUnder(context.Background(), tr, "two", time.Millisecond)
	got := spans(t, tr, mem)
	for _, name := range []string{admission.StageAdmission, admission.StageDecode, admission.StageImages, admission.StageVerify, admission.StagePolicy} {
		if len(got[name]) != 2 {
			t.Fatalf("%d %s spans, want 2 (one an admission)", len(got[name]), name)
		}
	}
	if string(got[admission.StageAdmission][0].GetTraceId()) == string(got[admission.StageAdmission][1].GetTraceId()) {
		t.Errorf("two admissions share a trace")
	}
	for i, uid := range []string{"one", "two"} {
		root := got[admission.StageAdmission][i]
		if attrOf(root, "attest.uid") != uid || attrOf(root, "attest.decision") != admission.DecisionDenied || attrOf(root, "http.route") != "/validate" {
			t.Errorf("admission %s: attributes %v", uid, root.GetAttributes())
		}
		if root.GetKind() != tracepb.Span_SPAN_KIND_SERVER || len(root.GetParentSpanId()) != 0 || len(root.GetTraceId()) != 16 || len(root.GetSpanId()) != 8 {
			t.Errorf("admission %s: kind %v, parent %x, trace %x, span %x", uid, root.GetKind(), root.GetParentSpanId(), root.GetTraceId(), root.GetSpanId())
		}
		images, verify := got[admission.StageImages][i], got[admission.StageVerify][i]
		if string(images.GetParentSpanId()) != string(root.GetSpanId()) || string(verify.GetParentSpanId()) != string(images.GetSpanId()) {
			t.Errorf("admission %s: verify_image is not under images under the admission", uid)
		}
		if string(verify.GetTraceId()) != string(root.GetTraceId()) || verify.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL {
			t.Errorf("admission %s: verify_image in trace %x (admission %x), kind %v", uid, verify.GetTraceId(), root.GetTraceId(), verify.GetKind())
		}
		if len(verify.GetAttributes()) != 2 || attrOf(verify, "attest.digest") != "sha256:"+uid || attrOf(verify, "attest.image") != "registry.example.com/app:"+uid {
			t.Errorf("admission %s: verify_image attributes %v (a reused slot must not keep the last one's)", uid, verify.GetAttributes())
		}
		vStart, vEnd := spanTime(verify.GetStartTimeUnixNano()), spanTime(verify.GetEndTimeUnixNano())
		if d := vEnd.Sub(vStart); d < time.Millisecond {
			t.Errorf("admission %s: verify_image lasted %s, the recorded time is at least 1ms", uid, d)
		}
		if verify.GetStartTimeUnixNano() < images.GetStartTimeUnixNano() || verify.GetEndTimeUnixNano() > images.GetEndTimeUnixNano() || images.GetEndTimeUnixNano() > root.GetEndTimeUnixNano() {
			t.Errorf("admission %s: a child's recorded times are outside its parent's", uid)
		}
		policy := got[admission.StagePolicy][i]
		if policy.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || policy.GetStatus().GetMessage() != "rego: undefined function" || len(policy.GetEvents()) != 1 {
			t.Errorf("admission %s: policy status %v, %d events; want the error recorded", uid, policy.GetStatus(), len(policy.GetEvents()))
		} else if ev := policy.GetEvents()[0]; ev.GetName() != "exception" || ev.GetTimeUnixNano() != policy.GetEndTimeUnixNano() {
			t.Errorf("admission %s: error event %v", uid, ev)
		}
		if root.GetStatus() != nil || len(root.GetEvents()) != 0 || got[admission.StageDecode][i].GetStatus() != nil {
			t.Errorf("admission %s: the admission or decode span is failed", uid)
		}
	}
}

// TestUnsampledAdmissionRecordsNothing: an admission the sampler leaves out exports no span, neither its own nor its
// stages'.
func TestUnsampledAdmissionRecordsNothing(t *testing.T) {
	tr, mem := memTracer(sdktrace.NeverSample())
	admit(tr, "one")
	if got := spans(t, tr, mem); len(got) != 0 {
		t.Errorf("unsampled admission exported %v", got)
	}
}

// TestAdmissionUnderATracedRequest: a request that arrives traced keeps its trace and its sampling decision.
func TestAdmissionUnderATracedRequest(t *testing.T) {
	tid, sid := trace.TraceID{1, 2, 3}, trace.SpanID{4, 5, 6}
	for _, tc := range []struct {
		name  string
		flags trace.TraceFlags
		want  int
	}{
		{"sampled", trace.FlagsSampled, 1},
		{"not sampled", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, mem := memTracer(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5)))
			parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: tc.flags, Remote: true})
			admitUnder(trace.ContextWithRemoteSpanContext(context.Background(), parent), tr, "x", 0)
			roots := spans(t, tr, mem)[admission.StageAdmission]
			if len(roots) != tc.want {
				t.Fatalf("%d admission spans, want %d", len(roots), tc.want)
			}
			if tc.want == 1 && (string(roots[0].GetTraceId()) != string(tid[:]) || string(roots[0].GetParentSpanId()) != string(sid[:])) {
				t.Errorf("trace %x parent %x, want %x under %x", roots[0].GetTraceId(), roots[0].GetParentSpanId(), tid, sid)
			}
		})
	}
}

// TestStageStillRunningWhenAnswered: a stage that had not ended when the admission answered (the pipeline past its
// budget) ends with the admission, failed and saying why; what it does afterwards is not recorded.
func TestStageStillRunningWhenAnswered(t *testing.T) {
	tr, mem := memTracer(sdktrace.AlwaysSample())
	ctx, root := tr.Start(context.Background(), admission.StageAdmission, "", "")
	pctx, policy := tr.Start(ctx, admission.StagePolicy, "attest.policy", "slow")
	root.End(nil)
	policy.Set("attest.late", "yes")
	policy.End(nil)
	_, late := tr.Start(pctx, admission.StageExemptions, "", "")
	late.End(nil)
	got := spans(t, tr, mem)
	if len(got[admission.StageExemptions]) != 0 {
		t.Errorf("a stage started after the answer was recorded")
	}
	if len(got[admission.StagePolicy]) != 1 {
		t.Fatalf("%d policy spans, want 1", len(got[admission.StagePolicy]))
	}
	p, r := got[admission.StagePolicy][0], got[admission.StageAdmission][0]
	if p.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || p.GetStatus().GetMessage() != errUnfinished.Error() || p.GetEndTimeUnixNano() != r.GetEndTimeUnixNano() {
		t.Errorf("unfinished stage: status %v, end %d (admission ended %d)", p.GetStatus(), p.GetEndTimeUnixNano(), r.GetEndTimeUnixNano())
	}
	if attrOf(p, "attest.late") != "" {
		t.Errorf("an attribute set after the answer was recorded")
	}
}

// TestStageOutsideAdmission: the pipeline run without the webhook (no attest.admission span) still traces its
// stages: the first is the root of its own trace.
func TestStageOutsideAdmission(t *testing.T) {
	tr, mem := memTracer(sdktrace.AlwaysSample())
	ctx, images := tr.Start(context.Background(), admission.StageImages, "", "")
	_, verify := tr.Start(ctx, admission.StageVerify, "attest.image", "registry.example.com/app:1")
	verify.End(errors.New("registry unreachable"))
	images.End(nil)
	got := spans(t, tr, mem)
	if len(got[admission.StageImages]) != 1 || len(got[admission.StageVerify]) != 1 {
		t.Fatalf("spans %v, want images over verify_image", got)
	}
	img := got[admission.StageImages][0]
	if v := got[admission.StageVerify][0]; string(v.GetParentSpanId()) != string(img.GetSpanId()) || v.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("verify_image: parent %x, status %v", v.GetParentSpanId(), v.GetStatus())
	}
	if img.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL {
		t.Errorf("images root kind %v", img.GetKind())
	}
}

// TestShutdownExportsAnsweredAdmissions: spans of admissions that answered are exported before Shutdown returns,
// in batches of at most maxBatchSpans; an admission answering after Shutdown is dropped.
func TestShutdownExportsAnsweredAdmissions(t *testing.T) {
	mem := &memUploader{}
	tr := newTracer(mem, sdktrace.AlwaysSample(), nil, Options{}) // the 5 s batch timeout never fires here
	tr.block = true
	const n = maxBatchSpans/5 + 20 // a batch and a part
	for range n {
		admit(tr, "x")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	admit(tr, "late")
	if len(mem.spans) != n*5 {
		t.Errorf("%d spans exported by Shutdown, want %d", len(mem.spans), n*5)
	}
	if want := (n*5 + maxBatchSpans - 1) / maxBatchSpans; mem.calls != want || mem.most > maxBatchSpans {
		t.Errorf("%d uploads of at most %d spans, want %d of at most %d", mem.calls, mem.most, want, maxBatchSpans)
	}
}

// TestSpansEncodedAsTheAdmissionAnswers: an answered admission's spans are in the filling batch, encoded, before
// the exporter wakes (it sends them at the batch timeout), so the exporter never encodes a batch at once.
func TestSpansEncodedAsTheAdmissionAnswers(t *testing.T) {
	mem := &memUploader{}
	tr := newTracer(mem, sdktrace.AlwaysSample(), nil, Options{}) // the 5 s batch timeout never fires here
	for i := range 3 {
		admit(tr, "x")
		tr.mu.Lock()
		n, admissions := tr.filling.len(), tr.filling.admissions
		tr.mu.Unlock()
		if n != 5*(i+1) || admissions != i+1 {
			t.Fatalf("after %d admissions the filling batch holds %d spans of %d admissions, want %d of %d", i+1, n, admissions, 5*(i+1), i+1)
		}
	}
	mem.mu.Lock()
	calls := mem.calls
	mem.mu.Unlock()
	if calls != 0 {
		t.Fatalf("%d uploads before the batch timeout", calls)
	}
	if got := spans(t, tr, mem); len(got[admission.StageAdmission]) != 3 {
		t.Errorf("%d admissions exported at Shutdown, want 3", len(got[admission.StageAdmission]))
	}
}

// TestFullQueueDropsAndReports: while the collector is slow, answered admissions beyond the queue are dropped (the
// admissions never wait), and the drop is reported with the next export.
func TestFullQueueDropsAndReports(t *testing.T) {
	mem := &memUploader{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	var mu sync.Mutex
	var reported []string
	tr := newTracer(mem, sdktrace.AlwaysSample(), nil, Options{BatchTimeout: time.Millisecond, Errors: func(err error) {
		mu.Lock()
		reported = append(reported, err.Error())
		mu.Unlock()
	}})
	admit(tr, "first")
	<-mem.entered // the exporter is sending the first admission and waits for the collector
	for range queuedAdmissions + 30 {
		admit(tr, "x")
	}
	close(mem.gate)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := (1 + queuedAdmissions) * 5; len(mem.spans) != want {
		t.Errorf("%d spans exported, want %d", len(mem.spans), want)
	}
	if len(reported) != 1 || !strings.Contains(reported[0], "the spans of 30 admissions were dropped") {
		t.Errorf("reported %q, want the 30 dropped admissions", reported)
	}
}

// TestExportFailures: an upload that fails is reported; a Shutdown whose context ends while the collector hangs
// returns in time, saying so.
func TestExportFailures(t *testing.T) {
	mem := &memUploader{fail: errors.New("connection refused")}
	var got []string
	tr := newTracer(mem, sdktrace.AlwaysSample(), nil, Options{Errors: func(err error) { got = append(got, err.Error()) }})
	admit(tr, "x")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "5 spans not exported: connection refused") {
		t.Errorf("reported %q", got)
	}

	hang := &memUploader{gate: make(chan struct{})}
	tr = newTracer(hang, sdktrace.AlwaysSample(), nil, Options{})
	admit(tr, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "spans still queued at shutdown") {
		t.Errorf("Shutdown with a hanging collector: %v", err)
	}
}

// TestResourceAttributes: the resource's attributes keep their types in OTLP, and its strings are valid UTF-8, so
// the encoded resource is never lost.
func TestResourceAttributes(t *testing.T) {
	res := resource.NewSchemaless(attribute.String("service.name", "attest"), attribute.Bool("b", true), attribute.Int64("i", 7), attribute.Float64("f", 0.5),
		attribute.String("k8s.pod.name", "web-\xff"))
	got := map[string]string{}
	for _, kv := range resourceProto(res).GetAttributes() {
		got[kv.GetKey()] = kv.GetValue().String()
	}
	want := map[string]string{"service.name": `string_value:"attest"`, "b": "bool_value:true", "i": "int_value:7", "f": "double_value:0.5",
		"k8s.pod.name": "string_value:\"web-\uFFFD\""}
	if _, err := proto.Marshal(resourceProto(res)); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if strings.ReplaceAll(got[k], " ", "") != strings.ReplaceAll(v, " ", "") {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}

// discard is an uploader that drops what it gets.
type discard struct{}

func (discard) Export(context.Context, []byte) error { return nil }
func (discard) Close() error                         { return nil }

// BenchmarkAdmissionSpans: the cost of tracing one admission of 17 stages (decode, images with 3 verifications,
// 10 policies, exemptions, response), recorded, encoded as OTLP and handed to an uploader that drops them.
func BenchmarkAdmissionSpans(b *testing.B) {
	tr := newTracer(discard{}, sdktrace.AlwaysSample(), nil, Options{BatchTimeout: time.Millisecond})
	tr.block = true
	b.ReportAllocs()
	for b.Loop() {
		ctx, root := tr.Start(context.Background(), admission.StageAdmission, "http.route", "/validate")
		_, decode := tr.Start(ctx, admission.StageDecode, "", "")
		decode.End(nil)
		root.Set("attest.uid", "0b1c2d3e")
		root.Set("attest.kind", "Deployment")
		root.Set("attest.operation", "CREATE")
		ictx, images := tr.Start(ctx, admission.StageImages, "", "")
		for range 3 {
			_, v := tr.Start(ictx, admission.StageVerify, "attest.image", "registry.example.com/team/app:1")
			v.Set("attest.digest", "sha256:0123")
			v.Set("attest.trust_policy", "team")
			v.Set("attest.signature_verified", "true")
			v.End(nil)
		}
		images.End(nil)
		for range 10 {
			_, p := tr.Start(ctx, admission.StagePolicy, "attest.policy", "no-privileged")
			p.End(nil)
		}
		_, x := tr.Start(ctx, admission.StageExemptions, "", "")
		x.End(nil)
		root.Set("attest.decision", admission.DecisionAllowed)
		_, r := tr.Start(ctx, admission.StageResponse, "", "")
		r.End(nil)
		root.End(nil)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// reference is the OTLP span message of each stage of r, built with the generated messages: what batch.add must
// encode (ids are the span IDs it drew).
func reference(r *recorder, ids []trace.SpanID) []*tracepb.Span {
	str := func(k, v string) *commonpb.KeyValue {
		k, v = strings.ToValidUTF8(k, "\uFFFD"), strings.ToValidUTF8(v, "\uFFFD")
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	ids = slices.Clone(ids) // the batch draws the next admission's into the same array
	var out []*tracepb.Span
	for i, st := range r.stages {
		sp := &tracepb.Span{TraceId: r.traceID[:], SpanId: ids[i][:], Name: st.name, Kind: tracepb.Span_SPAN_KIND_INTERNAL,
			StartTimeUnixNano: uint64(st.start.UnixNano())}
		if i == 0 && r.kind == trace.SpanKindServer {
			sp.Kind = tracepb.Span_SPAN_KIND_SERVER
		}
		if st.parent >= 0 {
			sp.ParentSpanId = ids[st.parent][:]
		} else if r.parent.IsValid() {
			sp.ParentSpanId = r.parent[:]
		}
		end, err := st.end, st.err
		if end.IsZero() {
			end, err = r.stages[0].end, errUnfinished
		}
		sp.EndTimeUnixNano = uint64(end.UnixNano())
		for _, a := range st.attrs {
			sp.Attributes = append(sp.Attributes, str(a.key, a.value))
		}
		if err != nil {
			sp.Events = []*tracepb.Span_Event{{TimeUnixNano: sp.EndTimeUnixNano, Name: "exception",
				Attributes: []*commonpb.KeyValue{str("exception.type", fmt.Sprintf("%T", err)), str("exception.message", err.Error())}}}
			sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: strings.ToValidUTF8(err.Error(), "\uFFFD")}
		}
		out = append(out, sp)
	}
	return out
}

// TestEncodingMatchesOTLP: what batch.add and request write decodes, with the generated OTLP messages, to the
// messages the stages describe: every field, long and multi-byte strings (lengths of several varint bytes),
// failed and unfinished stages, a remote parent, invalid UTF-8 (which OTLP's strings cannot hold: replaced), and a
// request of several admissions after a reused batch.
func TestEncodingMatchesOTLP(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 123)
	long := strings.Repeat("é", 9000) // 18,000 bytes: a three-byte length
	recorders := []*recorder{
		{traceID: trace.TraceID{1}, kind: trace.SpanKindServer, stages: []stage{
			{name: admission.StageAdmission, parent: -1, start: t0, end: t0.Add(time.Millisecond), attrs: []attr{{"http.route", "/validate"}, {"attest.uid", ""}}},
			{name: admission.StagePolicy, parent: 0, start: t0.Add(time.Microsecond), end: t0.Add(2 * time.Microsecond), attrs: []attr{{"attest.policy", long}}, err: errors.New(long)},
			{name: admission.StageVerify, parent: 1, start: t0.Add(3 * time.Microsecond)}, // unfinished
		}},
		{traceID: trace.TraceID{2, 3}, parent: trace.SpanID{9}, kind: trace.SpanKindInternal, stages: []stage{
			{name: admission.StageImages, parent: -1, start: t0, end: t0.Add(time.Second), err: fmt.Errorf("wrapped: %w", errUnfinished)},
			{name: admission.StageVerify, parent: 0, start: t0, end: t0, attrs: []attr{{"attest.image", "registry.example.com/a\xff\xfe:1"}},
				err: errors.New("registry said \xc3\x28")},
		}},
	}
	res := resource.NewSchemaless(attribute.String("service.name", "attest"), attribute.Int64("n", 3))
	b := newBatch(resourceProto(res))
	b.add(recorders[1]) // a first request, so the second reuses every buffer
	b.request()
	b.reset()
	var want []*tracepb.Span
	for _, r := range recorders {
		b.add(r)
		want = append(want, reference(r, r.ids)...)
	}
	var got coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b.request(), &got); err != nil {
		t.Fatal(err)
	}
	wantReq := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   resourceProto(res),
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: scopeName}, Spans: want}},
	}}}
	if !proto.Equal(&got, wantReq) {
		t.Errorf("decoded request differs:\n got %v\nwant %v", prototext(&got), prototext(wantReq))
	}
	if b.len() != len(want) {
		t.Errorf("batch counts %d spans, holds %d", b.len(), len(want))
	}
}

func prototext(m proto.Message) string {
	s := fmt.Sprint(m)
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// TestHeadersFromEnvironment: OTEL_EXPORTER_OTLP_HEADERS is read as the OTLP exporters read it, and refused
// when malformed.
func TestHeadersFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		list, want, err string
	}{
		{"", "map[]", ""},
		{"api-key=s3cr%20t, X-Tenant = a=b", "map[api-key:[s3cr t] x-tenant:[a=b]]", ""},
		{"novalue", "", `"novalue" is not key=value`},
		{"=v", "", `"=v" is not key=value`},
		{"k=%zz", "", "the value of k"},
	} {
		md, err := parseHeaders(tc.list)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.list, err, tc.err)
			}
			continue
		}
		if got := fmt.Sprint(map[string][]string(md)); err != nil || got != tc.want {
			t.Errorf("%q: %s %v, want %s", tc.list, got, err, tc.want)
		}
	}
}

// TestLateStageOfAReusedRecorder: a stage still running when its admission answered (the pipeline past its budget)
// records nothing, and breaks nothing, once its admission's recorder has been exported and holds another admission.
func TestLateStageOfAReusedRecorder(t *testing.T) {
	tr, mem := memTracer(sdktrace.AlwaysSample())
	actx, a := tr.Start(context.Background(), admission.StageAdmission, "attest.uid", "a")
	pctx, late := tr.Start(actx, admission.StagePolicy, "attest.policy", "slow")
	old := pctx.(*stageCtx).rec
	a.End(nil)
	for exported := false; !exported; time.Sleep(time.Millisecond) {
		mem.mu.Lock()
		exported = len(mem.spans) > 0 // a's recorder went back to the pool before its spans were sent
		mem.mu.Unlock()
	}
	tr.pool = sync.Pool{New: func() any { return old }} // the next admission gets it
	bctx, b := tr.Start(context.Background(), admission.StageAdmission, "attest.uid", "b")
	if bctx.(*stageCtx).rec != old {
		t.Fatal("the next admission did not get the recorder")
	}
	late.Set("attest.late", "yes")
	_, child := tr.Start(pctx, admission.StageExemptions, "", "")
	child.End(nil)
	late.End(nil)
	_, d := tr.Start(bctx, admission.StageDecode, "", "")
	d.End(nil)
	b.End(nil)
	got := spans(t, tr, mem)
	if len(got[admission.StageExemptions]) != 0 {
		t.Errorf("a stage started by an earlier admission's late stage was recorded")
	}
	root := got[admission.StageAdmission][1]
	if attrOf(root, "attest.uid") != "b" || len(got[admission.StageDecode]) != 1 || string(got[admission.StageDecode][0].GetParentSpanId()) != string(root.GetSpanId()) {
		t.Errorf("the reusing admission's spans: %v", got)
	}
	for _, p := range got[admission.StagePolicy] {
		if attrOf(p, "attest.late") != "" {
			t.Errorf("an attribute set after the answer was recorded")
		}
	}
}
