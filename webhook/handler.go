// Package webhook adapts HTTP AdmissionReviews to the admission pipeline and serves them over TLS with health,
// readiness and metrics endpoints.
package webhook

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"k8s.io/utils/clock"

	"github.com/continuums/attest/admission"
)

// Decider is the pipeline as the handler needs it.
type Decider interface {
	Evaluate(ctx context.Context, in admission.Input) admission.Decision
	Mutate(ctx context.Context, in admission.Input) admission.Decision
}

var _ Decider = (*admission.Evaluator)(nil)

// NamespaceLookup finds a namespace's labels and annotations (from an informer cache, never a live call).
type NamespaceLookup interface {
	Namespace(ctx context.Context, name string) (labels, annotations map[string]string, err error)
}

// FailurePolicy says what the handler answers when it cannot decide in time or fails: as the webhook
// configuration's failurePolicy would.
type FailurePolicy string

// The failure policies of a webhook configuration.
const (
	Fail   FailurePolicy = "Fail"
	Ignore FailurePolicy = "Ignore"
)

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	Decider Decider
	// Budget bounds the time to answer; keep it below the webhook configuration's timeoutSeconds (default 8 s of 10).
	Budget        time.Duration
	FailurePolicy FailurePolicy
	Namespaces    NamespaceLookup // optional
	Metrics       *Metrics        // optional
	Log           *slog.Logger
	// DecisionLog receives the decision log's lines, in the form of Log's JSON lines (attest serve: the writer
	// under its JSON log, so both stay one stream); Log's level decides whether they are written. nil: none.
	DecisionLog io.Writer
	Clock       clock.PassiveClock
	// Mutating handlers answer the mutating webhook with the decider's patches.
	Mutating bool
	// LogInputs records every request's redacted input in the decision log, for `attest policy replay`;
	// without it only evaluations a policy's sample rule selects are recorded. MaxLoggedInput caps each.
	LogInputs      bool
	MaxLoggedInput int
	// Tracer records each admission as a span tree (decode, the pipeline's stages, response); nil: no tracing.
	Tracer admission.Tracer
}

// Handler serves /validate or /mutate.
type Handler struct {
	o HandlerOptions
}

// NewHandler validates options.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Decider == nil {
		return nil, fmt.Errorf("webhook: a decider is required")
	}
	if o.Budget <= 0 {
		o.Budget = 8 * time.Second
	}
	switch o.FailurePolicy {
	case "":
		o.FailurePolicy = Fail
	case Fail, Ignore:
	default:
		return nil, fmt.Errorf("webhook: failure policy must be Fail or Ignore, got %q", o.FailurePolicy)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxLoggedInput <= 0 {
		o.MaxLoggedInput = DefaultMaxLoggedInput
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Handler{o: o}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.o.Clock.Now()
	path := "/validate"
	if h.o.Mutating {
		path = "/mutate"
	}
	ctx, span := admission.StartSpan(r.Context(), h.o.Tracer, admission.StageAdmission, "http.route", path)
	_, decode := admission.StartSpan(ctx, h.o.Tracer, admission.StageDecode, "", "")
	d, rerr := readReview(r)
	if rerr != nil {
		decode.End(rerr)
		span.Set("attest.decision", admission.DecisionError)
		h.refuse(w, start, rerr)
		span.End(nil)
		return
	}
	decode.End(nil)
	in := d.input()
	in.Request.TimestampNS = start.UnixNano()
	if h.o.Tracer != nil {
		span.Set("attest.uid", in.Request.UID)
		span.Set("attest.kind", in.Request.Kind)
		span.Set("attest.operation", in.Request.Operation)
	}
	inline := r.ProtoMajor == 1
	h.decide(ctx, in, inline, func(dec admission.Decision, late bool) {
		if late && inline {
			// The pipeline still holds this connection's goroutine: the client must send its next request on
			// another connection.
			w.Header().Set("Connection", "close")
		}
		h.answer(ctx, w, span, in, dec, start)
	})
}

// answer sends the decision, then writes the decision log and ends the admission's span.
func (h *Handler) answer(ctx context.Context, w http.ResponseWriter, span admission.Span, in admission.Input, dec admission.Decision, start time.Time) {
	if h.o.Mutating {
		// No audit annotations here: both webhooks are named attest.continuu.ms, and the API server refuses to
		// overwrite an audit annotation key, so a mutating "decision" would hide the validating verdict.
		dec.AuditAnnotations = nil
	}
	dec.Duration = h.o.Clock.Since(start)
	decision := dec.AuditAnnotations[admission.AnnotationDecision]
	if decision == "" {
		decision = admission.DecisionAllowed
	}
	// The mutating path neither decides nor counts: each request is counted once, by /validate. Counted before
	// the answer, so that a scrape after it sees the admission.
	if !h.o.Mutating && h.o.Metrics != nil {
		h.o.Metrics.observe(in, dec, decision)
	}
	span.Set("attest.decision", decision)
	_, respond := admission.StartSpan(ctx, h.o.Tracer, admission.StageResponse, "", "")
	writeReview(w, http.StatusOK, response(in.Request.UID, dec))
	// The answer goes out now (its Content-Length set, so the exchange is complete), and the decision log and the
	// admission's spans are written after it: the API server's next request does not wait for them, and a log
	// that blocks cannot hold an answer back. A failed flush leaves the answer to be sent when the handler returns.
	_ = http.NewResponseController(w).Flush()
	respond.End(nil)
	if !h.o.Mutating {
		h.logDecision(in, dec, decision)
	}
	span.End(nil)
}

// decide runs the pipeline and calls answer once: with the decision, or, when the budget runs out first, late,
// with the failure policy's answer while the pipeline goes on to its end unheard. Over HTTP/1.x (inline) the
// pipeline runs on the request's goroutine (net/http keeps it for the connection, its stack grown for the next
// admission; handing each admission to another goroutine cost a wake-up of a second thread) and the budget's timer
// answers late. Over HTTP/2 a stream's answer ends only when its handler returns, so the pipeline runs on a
// goroutine of its own and the handler returns with the late answer. Panics are recovered as internal failures.
func (h *Handler) decide(parent context.Context, in admission.Input, inline bool, answer func(dec admission.Decision, late bool)) {
	// The budget alone bounds the pipeline: a caller that hangs up (the API server's own timeout is longer) does
	// not cut it short, and the request's context is not made to track one more child per admission.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), h.o.Budget)
	defer cancel()
	if !inline {
		decided := make(chan admission.Decision, 1)
		go func() { decided <- h.run(ctx, in) }()
		select {
		case dec := <-decided:
			answer(h.settle(dec), false)
		case <-ctx.Done():
			answer(h.lateAnswer(ctx), true)
		}
		return
	}
	late := make(chan struct{})
	timer := time.AfterFunc(h.o.Budget, func() { // ctx's own deadline, without registering on ctx
		defer close(late)
		answer(h.lateAnswer(ctx), true)
	})
	dec := h.run(ctx, in)
	if !timer.Stop() {
		<-late // the budget's timer answered, or is answering: the handler returns once it has
		return
	}
	answer(h.settle(dec), false)
}

// lateAnswer is the failure policy's answer to an admission whose budget ran out.
func (h *Handler) lateAnswer(ctx context.Context) admission.Decision {
	cause := context.Cause(ctx)
	if cause == nil { // the budget's timer fired a moment before the context's own
		cause = context.DeadlineExceeded
	}
	return h.failure(admission.Decision{Code: http.StatusInternalServerError,
		Message: fmt.Sprintf("ATTEST did not reach a decision within %s: %v", h.o.Budget, cause)})
}

// settle applies the failure policy to a pipeline that failed.
func (h *Handler) settle(dec admission.Decision) admission.Decision {
	if dec.Code == http.StatusInternalServerError {
		return h.failure(dec)
	}
	return dec
}

// run evaluates (or prepares the mutations of) one admission, a panic becoming an internal failure.
func (h *Handler) run(ctx context.Context, in admission.Input) (dec admission.Decision) {
	defer func() {
		if p := recover(); p != nil {
			h.o.Log.Error("panic during admission", "uid", in.Request.UID, "panic", p, "stack", string(debug.Stack()))
			dec = admission.Decision{Code: http.StatusInternalServerError, Message: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	if h.o.Namespaces != nil && in.Request.Namespace != "" {
		labels, annotations, err := h.o.Namespaces.Namespace(ctx, in.Request.Namespace)
		if err != nil {
			h.o.Log.Warn("namespace metadata unavailable; evaluating with its name only", "namespace", in.Request.Namespace, "err", err)
		}
		in.NamespaceLabels, in.NamespaceAnnotations = labels, annotations
	}
	if h.o.Mutating {
		return h.o.Decider.Mutate(ctx, in)
	}
	return h.o.Decider.Evaluate(ctx, in)
}

// failure answers per the failure policy: Fail refuses, Ignore admits with a warning; both say why.
func (h *Handler) failure(dec admission.Decision) admission.Decision {
	if h.o.Mutating {
		// A mutation that fails is skipped, never a refusal: validation re-checks everything it would have set.
		return admission.Decision{Allowed: true, Code: http.StatusOK,
			Warnings: admission.CapWarnings([]string{"ATTEST could not prepare this request's mutations and made none: " + dec.Message})}
	}
	out := admission.Decision{Code: http.StatusInternalServerError, Results: dec.Results,
		AuditAnnotations: map[string]string{admission.AnnotationDecision: admission.DecisionError}}
	if h.o.FailurePolicy == Ignore {
		out.Allowed, out.Code = true, http.StatusOK
		out.Warnings = admission.CapWarnings([]string{"ATTEST could not check this request and admitted it unchecked (failurePolicy Ignore): " + dec.Message})
		return out
	}
	out.Message = "ATTEST could not check this request and refuses it (failurePolicy Fail): " + dec.Message + "; retry, or ask your cluster administrators to check ATTEST"
	return out
}

// refuse answers a request we could not read. With no UID there is no AdmissionResponse the API server can
// match, so the HTTP status carries the error too.
func (h *Handler) refuse(w http.ResponseWriter, start time.Time, rerr *reviewError) {
	dec := admission.Decision{Code: rerr.Code, Message: rerr.Error(),
		AuditAnnotations: map[string]string{admission.AnnotationDecision: admission.DecisionError}}
	dec.Duration = h.o.Clock.Since(start)
	in := admission.Input{Request: admission.Request{UID: rerr.UID, Operation: "unknown"}}
	if h.o.Metrics != nil && !h.o.Mutating {
		h.o.Metrics.observe(in, dec, admission.DecisionError)
	}
	h.logDecision(in, dec, admission.DecisionError)
	status := int(rerr.Code)
	if rerr.UID != "" {
		status = http.StatusOK
	}
	writeReview(w, status, response(rerr.UID, dec))
}
