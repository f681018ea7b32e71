package webhooktest

import (
	"context"
	"net/http"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/webhook"
)

// Blocking is a decider that never decides in time: it waits until its context is done, then until Release is
// closed (if set), so the handler's budget, not the decider, ends every request. Close Release in a cleanup
// registered after the server started: the pipeline holds its request's goroutine, and so the server's shutdown, until it returns.
type Blocking struct {
	Release <-chan struct{}
}

var _ webhook.Decider = (*Blocking)(nil)

// Evaluate blocks as described on Blocking and then reports the context's end as an internal failure.
func (b *Blocking) Evaluate(ctx context.Context, _ admission.Input) admission.Decision {
	<-ctx.Done()
	if b.Release != nil {
		<-b.Release
	}
	return admission.Decision{Code: http.StatusInternalServerError, Message: "blocking decider gave up: " + context.Cause(ctx).Error()}
}

// Panicking is a decider that panics with Value on every request.
type Panicking struct {
	Value any
}

var _ webhook.Decider = Panicking{}

// Evaluate panics.
func (p Panicking) Evaluate(context.Context, admission.Input) admission.Decision { panic(p.Value) }

// Mutate panics.
func (p Panicking) Mutate(context.Context, admission.Input) admission.Decision { panic(p.Value) }

// Mutate blocks like Evaluate.
func (b *Blocking) Mutate(ctx context.Context, in admission.Input) admission.Decision {
	return b.Evaluate(ctx, in)
}
