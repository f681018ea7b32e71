//go:build !lean

package tracing

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/continuums/attest/admission"
)

// memTracer is a Tracer whose spans are exported, as each ends, to an in-memory exporter.
func memTracer(sampler sdktrace.Sampler) (*Tracer, *tracetest.InMemoryExporter) {
	mem := tracetest.NewInMemoryExporter()
	return newTracer(sdktrace.WithSyncer(mem), sdktrace.WithSampler(sampler)), mem
}

// spans waits for the admissions' spans to be built and returns them by name.
func spans(t *testing.T, tr *Tracer, mem *tracetest.InMemoryExporter) map[string][]tracetest.SpanStub {
	t.Helper()
	tr.building.Wait()
	out := map[string][]tracetest.SpanStub{}
	for _, s := range mem.GetSpans() {
		out[s.Name] = append(out[s.Name], s)
	}
	return out
}

func attrOf(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.AsString()
		}
	}
	return ""
}

// admit records one admission as the webhook and the pipeline do: decode, images with one verification, a policy
// that failed to evaluate, and the decision; it returns when the admission answered.
func admit(tr *Tracer, uid string) {
	ctx, root := tr.Start(context.Background(), admission.StageAdmission, "http.route", "/validate")
	_, decode := tr.Start(ctx, admission.StageDecode, "", "")
	decode.End(nil)
	root.Set("attest.uid", uid)
	ictx, images := tr.Start(ctx, admission.StageImages, "", "")
	_, verify := tr.Start(ictx, admission.StageVerify, "attest.image", "registry.example.com/app:"+uid)
	verify.Set("attest.digest", "sha256:"+uid)
	time.Sleep(time.Millisecond)
	verify.End(nil)
	images.End(nil)
	_, policy := tr.Start(ctx, admission.StagePolicy, "attest.policy", "no-privileged")
	policy.End(errors.New("rego: undefined function"))
	root.Set("attest.decision", admission.DecisionDenied)
	root.End(nil)
}

// TestRecordedSpans: the spans built after the admission answered carry the tree, the recorded times, the
// attributes and errors, and a pooled recorder brings nothing of the admission before into the next one.
func TestRecordedSpans(t *testing.T) {
	tr, mem := memTracer(sdktrace.AlwaysSample())
	admit(tr, "one")
	admit(tr, "two")
	got := spans(t, tr, mem)
	for _, name := range []string{admission.StageAdmission, admission.StageDecode, admission.StageImages, admission.StageVerify, admission.StagePolicy} {
		if len(got[name]) != 2 {
			t.Fatalf("%d %s spans, want 2 (one an admission)", len(got[name]), name)
		}
	}
	for i, uid := range []string{"one", "two"} {
		root := got[admission.StageAdmission][i]
		if attrOf(root, "attest.uid") != uid || attrOf(root, "attest.decision") != admission.DecisionDenied || attrOf(root, "http.route") != "/validate" {
			t.Errorf("admission %s: attributes %v", uid, root.Attributes)
		}
		if root.SpanKind != trace.SpanKindServer {
			t.Errorf("admission %s: kind %v", uid, root.SpanKind)
		}
		images, verify := got[admission.StageImages][i], got[admission.StageVerify][i]
		if images.Parent.SpanID() != root.SpanContext.SpanID() || verify.Parent.SpanID() != images.SpanContext.SpanID() {
			t.Errorf("admission %s: verify_image is not under images under the admission", uid)
		}
		if len(verify.Attributes) != 2 || attrOf(verify, "attest.digest") != "sha256:"+uid || attrOf(verify, "attest.image") != "registry.example.com/app:"+uid {
			t.Errorf("admission %s: verify_image attributes %v (a reused slot must not keep the last one's)", uid, verify.Attributes)
		}
		if d := verify.EndTime.Sub(verify.StartTime); d < time.Millisecond {
			t.Errorf("admission %s: verify_image lasted %s, the recorded time is at least 1ms", uid, d)
		}
		if verify.StartTime.Before(images.StartTime) || verify.EndTime.After(images.EndTime) || images.EndTime.After(root.EndTime) {
			t.Errorf("admission %s: a child's recorded times are outside its parent's", uid)
		}
		policy := got[admission.StagePolicy][i]
		if policy.Status.Code != codes.Error || policy.Status.Description != "rego: undefined function" || len(policy.Events) != 1 {
			t.Errorf("admission %s: policy status %+v, %d events; want the error recorded", uid, policy.Status, len(policy.Events))
		}
		if root.Status.Code == codes.Error {
			t.Errorf("admission %s: the admission span is failed", uid)
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
	if p.Status.Code != codes.Error || p.Status.Description != errUnfinished.Error() || !p.EndTime.Equal(r.EndTime) {
		t.Errorf("unfinished stage: status %+v, end %v (admission ended %v)", p.Status, p.EndTime, r.EndTime)
	}
	for _, a := range p.Attributes {
		if a == attribute.String("attest.late", "yes") {
			t.Errorf("an attribute set after the answer was recorded")
		}
	}
}

// TestStageOutsideAdmission: the pipeline run without the webhook (no attest.admission span) still traces its
// stages, as SDK spans at once.
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
	if v := got[admission.StageVerify][0]; v.Parent.SpanID() != got[admission.StageImages][0].SpanContext.SpanID() || v.Status.Code != codes.Error {
		t.Errorf("verify_image: parent %v, status %+v", v.Parent.SpanID(), v.Status)
	}
}

// TestShutdownBuildsAnsweredAdmissions: spans of admissions that answered are built and exported before Shutdown
// returns.
func TestShutdownBuildsAnsweredAdmissions(t *testing.T) {
	mem := &keep{}
	tr := newTracer(sdktrace.WithBatcher(mem), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	for range 20 {
		admit(tr, "x")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mem.n != 20*5 {
		t.Errorf("%d spans exported by Shutdown, want %d", mem.n, 20*5)
	}
}

// keep counts the spans exported to it, and keeps the count at Shutdown (unlike tracetest's exporter).
type keep struct{ n int }

func (k *keep) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	k.n += len(s)
	return nil
}
func (k *keep) Shutdown(context.Context) error { return nil }

// BenchmarkAdmissionSpans: the cost of tracing one admission of 17 stages (decode, images with 3 verifications,
// 10 policies, exemptions, response), the spans built and handed to an exporter that drops them.
func BenchmarkAdmissionSpans(b *testing.B) {
	tr := newTracer(sdktrace.WithSyncer(&keep{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
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
		tr.building.Wait()
	}
}
