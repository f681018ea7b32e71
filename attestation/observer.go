package attestation

import "context"

// Observer is told when the verification of one image starts (a verdict from the cache too) and, through the
// function it returns, of the facts when it ends: the tracing of `attest serve` records each as a span.
type Observer func(ctx context.Context, image string) (context.Context, func(Facts))

type observerKey struct{}

// WithObserver makes VerifyAll under ctx report each image's verification to o.
func WithObserver(ctx context.Context, o Observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}
