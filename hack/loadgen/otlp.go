package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/tracing"
)

// receiverCommand is the hidden first argument that makes loadgen the OTLP receiver process of -otlp-receiver
// process.
const receiverCommand = "otlp-receiver"

// discardArg follows receiverCommand for a receiver that discards what it gets (-otlp-receiver discard).
const discardArg = "discard"

// spanCounter is an OTLP/gRPC receiver on loopback standing in for a collector: it says how many spans it got
// (a discarding receiver, how many bytes).
type spanCounter interface {
	count() (int64, error)
}

// noSpans is the receiver of the A/A control (-trace-ratio 0), which exports nothing.
type noSpans struct{}

func (noSpans) count() (int64, error) { return 0, nil }

// discardSink answers OTLP/gRPC trace exports without decoding them, counting their bytes: the receiver process of
// -otlp-receiver discard, which stands for a collector on another machine (what the exporter does is all that
// runs on these cores, not a collector's decoding).
type discardSink struct{ bytes atomic.Int64 }

func (s *discardSink) count() (int64, error) { return s.bytes.Load(), nil }

// rawExport is an export request left encoded: its size.
type rawExport int

// rawCodec hands the receiver each request's size instead of decoding it, and answers with an empty
// ExportTraceServiceResponse (which encodes to no bytes).
type rawCodec struct{}

func (rawCodec) Marshal(any) ([]byte, error) { return nil, nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*rawExport)
	if !ok {
		return fmt.Errorf("discarding receiver: unexpected message %T", v)
	}
	*p = rawExport(len(data))
	return nil
}

func (rawCodec) Name() string { return "proto" }

// discardService is OTLP's TraceService/Export served by a discardSink.
var discardService = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Export", Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var n rawExport
		if err := dec(&n); err != nil {
			return nil, err
		}
		srv.(*discardSink).bytes.Add(int64(n))
		return &n, nil
	}}},
}

// otlpSink is an OTLP/gRPC trace receiver that counts the spans it gets.
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

func (s *otlpSink) count() (int64, error) { return s.spans.Load(), nil }

// listenSink serves an otlpSink (with discard, a discardSink) on 127.0.0.1 and returns it with its address and the
// function that stops it.
func listenSink(discard bool) (spanCounter, string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("OTLP receiver: %w", err)
	}
	var sink spanCounter
	var srv *grpc.Server
	if discard {
		d := &discardSink{}
		srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
		srv.RegisterService(&discardService, d)
		sink = d
	} else {
		s := &otlpSink{}
		srv = grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, s)
		sink = s
	}
	go func() { _ = srv.Serve(l) }()
	return sink, l.Addr().String(), srv.Stop, nil
}

// runReceiver is the receiver process: it prints its address, then answers each line on stdin with the number
// of spans received, and exits when stdin closes.
func runReceiver(discard bool) error {
	sink, addr, stop, err := listenSink(discard)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Println(addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, _ := sink.count()
		fmt.Println(n)
	}
	return in.Err()
}

// childSink is the receiver process seen from loadgen.
type childSink struct {
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startChildSink starts this program as the receiver process, as a collector runs beside attest serve.
func startChildSink(t *loadenv.TB, discard bool, nice int) (*childSink, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("OTLP receiver process: %w", err)
	}
	args := []string{self, receiverCommand}
	if discard {
		args = append(args, discardArg)
	}
	if nice != 0 { // through nice(1): every thread of the receiver inherits it
		args = append([]string{"nice", "-n", strconv.Itoa(nice)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", fmt.Errorf("OTLP receiver process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("OTLP receiver process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("OTLP receiver process: %w", err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	c := &childSink{stdin: stdin, out: bufio.NewReader(stdout)}
	addr, err := c.out.ReadString('\n')
	if err != nil {
		return nil, "", fmt.Errorf("OTLP receiver process did not say its address: %w", err)
	}
	return c, strings.TrimSpace(addr), nil
}

func (c *childSink) count() (int64, error) {
	if _, err := io.WriteString(c.stdin, "count\n"); err != nil {
		return 0, fmt.Errorf("OTLP receiver process: %w", err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("OTLP receiver process: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// tracedPipeline is the validate pipeline with tracing exported, as attest serve --otlp-endpoint runs it, to a
// receiver in another process (receiver "process", as a collector runs) or in this one ("inprocess": its CPU and
// garbage are then counted against the traced pipeline).
func tracedPipeline(ctx context.Context, t *loadenv.TB, e *loadenv.Env, ratio float64, receiver string, nice int) (*pipeline, spanCounter, error) {
	if ratio == 0 { // the A/A control: a second untraced pipeline, so the ratio shows the comparison's own noise
		p, err := newPipeline(e, 1024, false, nil)
		return p, noSpans{}, err
	}
	var sink spanCounter
	var addr string
	switch receiver {
	case "process", "discard":
		c, a, err := startChildSink(t, receiver == "discard", nice)
		if err != nil {
			return nil, nil, err
		}
		sink, addr = c, a
	case "inprocess":
		s, a, stop, err := listenSink(false)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(stop)
		sink, addr = s, a
	default:
		return nil, nil, errors.New(`-otlp-receiver: want "process", "discard" or "inprocess"`)
	}
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: "http://" + addr, SampleRatio: ratio, Version: "loadgen"})
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	p, err := newPipeline(e, 1024, false, tr)
	return p, sink, err
}

// niceLabel says, in the traced figures, that the receiver process ran at a lower priority.
func niceLabel(nice int) string {
	if nice == 0 {
		return ""
	}
	return fmt.Sprintf(" at nice %d", nice)
}
