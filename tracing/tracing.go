//go:build !lean

// Package tracing exports the stages of each admission (admission.Tracer) as OpenTelemetry spans over OTLP/gRPC,
// for `attest serve --otlp-endpoint`. It is never linked into the lean CLI.
package tracing

import (
	"context"
	"fmt"
	"net/url"
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

// Tracer is an admission.Tracer backed by an OpenTelemetry SDK tracer provider with a batching OTLP exporter:
// spans are queued and sent off the request path.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
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
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/continuums/attest")}, nil
}

// Start opens a stage's span under ctx's span.
func (t *Tracer) Start(ctx context.Context, stage, key, value string) (context.Context, admission.Span) {
	var opts []trace.SpanStartOption
	if key != "" {
		opts = append(opts, trace.WithAttributes(attribute.String(key, value)))
	}
	if stage == admission.StageAdmission {
		opts = append(opts, trace.WithSpanKind(trace.SpanKindServer))
	}
	ctx, s := t.tracer.Start(ctx, stage, opts...)
	return ctx, span{s}
}

// Shutdown sends the spans still queued and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

type span struct{ s trace.Span }

func (s span) Set(key, value string) { s.s.SetAttributes(attribute.String(key, value)) }

func (s span) End(err error) {
	if err != nil {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, err.Error())
	}
	s.s.End()
}
