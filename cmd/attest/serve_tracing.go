//go:build !lean

package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/tracing"
)

// tracingOptions turn on OpenTelemetry traces of each admission in `attest serve`; off unless --otlp-endpoint.
type tracingOptions struct {
	endpoint    string
	sampleRatio float64
}

func (o *tracingOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.endpoint, "otlp-endpoint", "", "export a trace of each admission (decode, each image verification, each policy, exemptions, response) over OTLP/gRPC to this collector: http://HOST:PORT (plaintext) or https://HOST:PORT (TLS); off when empty")
	f.Float64Var(&o.sampleRatio, "otlp-sample-ratio", 1, "share of admissions traced (0 < r <= 1), unless the API server's request was already traced")
}

// tracer builds the exporter when --otlp-endpoint is set (nil: no tracing) and returns the function that flushes
// its queued spans at shutdown.
func (o *tracingOptions) tracer(ctx context.Context, log *slog.Logger) (admission.Tracer, func(), error) {
	if o.endpoint == "" {
		return nil, func() {}, nil
	}
	version := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	t, err := tracing.New(ctx, tracing.Options{Endpoint: o.endpoint, SampleRatio: o.sampleRatio, Version: version,
		Errors: func(err error) { log.Warn("tracing", "err", err) }})
	if err != nil {
		return nil, nil, err
	}
	log.Info("tracing admissions", "otlp_endpoint", o.endpoint, "sample_ratio", o.sampleRatio)
	return t, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			log.Warn("tracing: spans not sent at shutdown", "err", err)
		}
	}, nil
}
