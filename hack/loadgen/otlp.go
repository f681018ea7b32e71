package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/tracing"
)

// otlpSink is an OTLP/gRPC trace receiver on loopback that counts the spans it gets, standing in for a collector.
type otlpSink struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (s *otlpSink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			s.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (s *otlpSink) count() int64 { return s.spans.Load() }

// tracedPipeline is the validate pipeline with tracing exported, as attest serve --otlp-endpoint runs it, to a
// receiver in this process.
func tracedPipeline(ctx context.Context, t *loadenv.TB, e *loadenv.Env, ratio float64) (*pipeline, *otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	sink := &otlpSink{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, sink)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: "http://" + l.Addr().String(), SampleRatio: ratio, Version: "loadgen"})
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	p, err := newPipeline(e, 1024, false, tr)
	return p, sink, err
}
