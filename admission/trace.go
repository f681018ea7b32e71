package admission

import (
	"context"
	"errors"
	"strconv"

	"github.com/continuums/attest/attestation"
)

// Tracer records the stages of one admission as spans: decode, each image verification, each policy, the
// exemptions and the response (the tracing package exports them over OTLP). Nil means no tracing, and then no
// stage allocates anything for it.
type Tracer interface {
	// Start opens the span of a stage under ctx's span; key and value, when key is not empty, are its one
	// attribute (the policy, the image).
	Start(ctx context.Context, stage, key, value string) (context.Context, Span)
}

// Span is one stage being recorded.
type Span interface {
	// Set adds an attribute, e.g. the outcome.
	Set(key, value string)
	// End closes the span; a non-nil err marks it failed.
	End(err error)
}

// Stage names, as the spans are called.
const (
	StageAdmission  = "attest.admission"
	StageDecode     = "attest.decode"
	StageImages     = "attest.images"
	StageVerify     = "attest.verify_image"
	StagePolicy     = "attest.policy"
	StageExemptions = "attest.exemptions"
	StageResponse   = "attest.response"
)

// noSpan is the span of a stage when no Tracer is set: a zero-size value, so returning it allocates nothing.
type noSpan struct{}

func (noSpan) Set(string, string) {}
func (noSpan) End(error)          {}

// StartSpan opens a stage's span on t, or returns ctx and a span that records nothing when t is nil.
func StartSpan(ctx context.Context, t Tracer, stage, key, value string) (context.Context, Span) {
	if t == nil {
		return ctx, noSpan{}
	}
	return t.Start(ctx, stage, key, value)
}

// traceImage opens the span of one image's verification; attestation calls it through the context (only when a
// Tracer is set) and the returned function with the image's facts when the verification ends.
func (e *Evaluator) traceImage(ctx context.Context, image string) (context.Context, func(attestation.Facts)) {
	ctx, span := e.tracer.Start(ctx, StageVerify, "attest.image", image)
	return ctx, func(f attestation.Facts) {
		if f.Digest != "" {
			span.Set("attest.digest", f.Digest)
		}
		if f.Trust.Policy != "" {
			span.Set("attest.trust_policy", f.Trust.Policy)
		}
		span.Set("attest.signature_verified", strconv.FormatBool(f.Signature.Verified))
		var err error
		if f.Trust.Error != "" {
			err = errors.New(f.Trust.Error)
		}
		span.End(err)
	}
}
