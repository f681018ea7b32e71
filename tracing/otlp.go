//go:build !lean

package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The OTLP trace messages are written straight from the recorded stages in protobuf's wire format: marshalling
// generated messages cost about as much as everything else tracing does (see README, Tracing). Field numbers are
// those of opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto (OTLP 1.x, stable);
// TestEncodingMatchesOTLP decodes what is written with the generated messages.
const (
	fieldResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fieldResource   = 1 // ResourceSpans.resource
	fieldScopeSpans = 2 // ResourceSpans.scope_spans

	fieldScope = 1 // ScopeSpans.scope
	fieldSpans = 2 // ScopeSpans.spans

	fieldScopeName = 1 // InstrumentationScope.name

	fieldTraceID      = 1 // Span.trace_id
	fieldSpanID       = 2
	fieldParentSpanID = 4
	fieldName         = 5
	fieldKind         = 6
	fieldStart        = 7
	fieldEnd          = 8
	fieldAttributes   = 9
	fieldEvents       = 11
	fieldStatus       = 15

	fieldEventTime       = 1 // Span.Event.time_unix_nano
	fieldEventName       = 2
	fieldEventAttributes = 3

	fieldStatusMessage = 2 // Status.message
	fieldStatusCode    = 3

	fieldKey         = 1 // KeyValue.key
	fieldValue       = 2 // KeyValue.value
	fieldStringValue = 1 // AnyValue.string_value

	kindInternal    = 1 // Span.SpanKind
	kindServer      = 2
	statusCodeError = 2 // Status.StatusCode
)

// batch is the OTLP request being filled: the spans of whole admissions, already encoded, and its last request,
// all reused from one batch to the next.
type batch struct {
	res        []byte // the encoded Resource, the same in every request
	scope      []byte // the encoded InstrumentationScope
	spans      []byte // ScopeSpans.spans entries
	n          int    // spans in spans
	admissions int    // admissions in spans
	out        []byte // the last request
}

func newBatch(res *resourcepb.Resource) *batch {
	b := &batch{}
	b.res, _ = proto.Marshal(res) // a message of string, bool, int and double attributes always marshals
	b.scope = protowire.AppendString(protowire.AppendTag(nil, fieldScopeName, protowire.BytesType), scopeName)
	return b
}

func (b *batch) empty() bool { return b.n == 0 }
func (b *batch) len() int    { return b.n }

func (b *batch) reset() { b.spans, b.n, b.admissions = b.spans[:0], 0, 0 }

// request encodes the ExportTraceServiceRequest of the batch: one resource, one scope, its spans.
func (b *batch) request() []byte {
	scopeSpans := sizeField(fieldScope, len(b.scope)) + len(b.spans)
	resourceSpans := sizeField(fieldResource, len(b.res)) + sizeField(fieldScopeSpans, scopeSpans)
	out := appendLen(b.out[:0], fieldResourceSpans, resourceSpans)
	out = appendBytes(out, fieldResource, b.res)
	out = appendLen(out, fieldScopeSpans, scopeSpans)
	out = appendBytes(out, fieldScope, b.scope)
	out = append(out, b.spans...)
	b.out = out
	return out
}

// add encodes a closed recorder's stages and appends them.
func (b *batch) add(r *recorder) {
	r.encode()
	b.append(r)
}

// append adds the spans r.encode wrote.
func (b *batch) append(r *recorder) {
	b.spans = append(b.spans, r.encoded...)
	b.n += r.encodedSpans
	b.admissions++
}

// merge appends o's spans.
func (b *batch) merge(o *batch) {
	b.spans = append(b.spans, o.spans...)
	b.n += o.n
	b.admissions += o.admissions
}

// encode writes a closed recorder's stages as OTLP spans (ScopeSpans.spans entries) with their recorded times
// into r.encoded; a stage not ended when the root ended ends with it, failed.
func (r *recorder) encode() {
	r.ids = r.ids[:0]
	for range r.stages {
		r.ids = append(r.ids, newSpanID())
	}
	r.encoded, r.encodedSpans = r.encoded[:0], len(r.stages)
	end := r.stages[0].end
	for i := range r.stages {
		st := &r.stages[i]
		s := r.span[:0]
		s = appendBytes(s, fieldTraceID, r.traceID[:])
		s = appendBytes(s, fieldSpanID, r.ids[i][:])
		switch {
		case st.parent >= 0:
			s = appendBytes(s, fieldParentSpanID, r.ids[st.parent][:])
		case r.parent.IsValid():
			s = appendBytes(s, fieldParentSpanID, r.parent[:])
		}
		s = appendString(s, fieldName, st.name)
		kind := uint64(kindInternal)
		if i == 0 && r.kind == trace.SpanKindServer {
			kind = kindServer
		}
		s = protowire.AppendVarint(protowire.AppendTag(s, fieldKind, protowire.VarintType), kind)
		stageEnd, err := st.end, st.err
		if stageEnd.IsZero() {
			stageEnd, err = end, errUnfinished
		}
		endNS := uint64(stageEnd.UnixNano())
		s = protowire.AppendFixed64(protowire.AppendTag(s, fieldStart, protowire.Fixed64Type), uint64(st.start.UnixNano()))
		s = protowire.AppendFixed64(protowire.AppendTag(s, fieldEnd, protowire.Fixed64Type), endNS)
		for _, a := range st.attrs {
			s = appendAttr(s, fieldAttributes, a.key, a.value)
		}
		if err != nil { // as the SDK's RecordError and SetStatus(Error) record it
			s = appendError(s, err, endNS)
		}
		r.encoded = appendBytes(r.encoded, fieldSpans, s)
		r.span = s
	}
}

// appendError writes the exception event and the error status of a failed stage.
func appendError(s []byte, err error, at uint64) []byte {
	msg, typ := validUTF8(err.Error()), fmt.Sprintf("%T", err)
	event := protowire.SizeTag(fieldEventTime) + 8 + sizeField(fieldEventName, len("exception")) +
		sizeField(fieldEventAttributes, sizeAttr("exception.type", typ)) + sizeField(fieldEventAttributes, sizeAttr("exception.message", msg))
	s = appendLen(s, fieldEvents, event)
	s = protowire.AppendFixed64(protowire.AppendTag(s, fieldEventTime, protowire.Fixed64Type), at)
	s = appendString(s, fieldEventName, "exception")
	s = appendAttr(s, fieldEventAttributes, "exception.type", typ)
	s = appendAttr(s, fieldEventAttributes, "exception.message", msg)
	s = appendLen(s, fieldStatus, sizeField(fieldStatusMessage, len(msg))+protowire.SizeTag(fieldStatusCode)+protowire.SizeVarint(statusCodeError))
	s = appendString(s, fieldStatusMessage, msg)
	return protowire.AppendVarint(protowire.AppendTag(s, fieldStatusCode, protowire.VarintType), statusCodeError)
}

// sizeField is the size of a length-delimited field holding n bytes.
func sizeField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// sizeAttr is the size of a KeyValue holding a string.
func sizeAttr(key, value string) int {
	return sizeField(fieldKey, len(key)) + sizeField(fieldValue, sizeField(fieldStringValue, len(value)))
}

func appendLen(b []byte, num protowire.Number, n int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(n))
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// appendString writes a string field; strings are valid UTF-8 in OTLP (a collector refuses a whole request with
// one that is not), so invalid bytes, e.g. quoted from a registry's error, are replaced.
func appendString(b []byte, num protowire.Number, v string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), validUTF8(v))
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendAttr writes a KeyValue with a string value as field num.
func appendAttr(b []byte, num protowire.Number, key, value string) []byte {
	key, value = validUTF8(key), validUTF8(value)
	b = appendLen(b, num, sizeAttr(key, value))
	b = appendString(b, fieldKey, key)
	b = appendLen(b, fieldValue, sizeField(fieldStringValue, len(value)))
	return appendString(b, fieldStringValue, value)
}

// exportMethod is the OTLP/gRPC trace service's one method.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// grpcUploader sends encoded requests to an OTLP/gRPC collector.
type grpcUploader struct {
	conn    *grpc.ClientConn
	headers metadata.MD
}

// dial builds the connection to u (http: plaintext, https: TLS with the system roots or
// OTEL_EXPORTER_OTLP_CERTIFICATE); gRPC connects on the first export, so a collector that is down delays nothing.
// OTEL_EXPORTER_OTLP_HEADERS (and its _TRACES_ form) add headers to each export, e.g. a collector's API key.
func dial(u *url.URL) (*grpcUploader, error) {
	creds := insecure.NewCredentials()
	if u.Scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if path := otelEnv("CERTIFICATE"); path != "" {
			pem, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE %s: no PEM certificate in it", path)
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	headers, err := parseHeaders(otelEnv("HEADERS"))
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %w", u, err)
	}
	return &grpcUploader{conn: conn, headers: headers}, nil
}

// otelEnv reads OTEL_EXPORTER_OTLP_TRACES_<name>, or else OTEL_EXPORTER_OTLP_<name>, as the OTLP exporters do.
func otelEnv(name string) string {
	if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_" + name)
}

// parseHeaders reads the OTLP exporters' header list: key=value pairs separated by commas, values URL-encoded.
func parseHeaders(list string) (metadata.MD, error) {
	md := metadata.MD{}
	for pair := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %q is not key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: the value of %s: %w", k, err)
		}
		md.Append(k, val)
	}
	return md, nil
}

// Export sends one request, retrying while the collector is unavailable or pushing back, until ctx ends.
func (g *grpcUploader) Export(ctx context.Context, request []byte) error {
	if len(g.headers) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, g.headers)
	}
	wait := 100 * time.Millisecond
	for {
		var resp coltracepb.ExportTraceServiceResponse
		err := g.conn.Invoke(ctx, exportMethod, encoded(request), &resp, grpc.ForceCodecV2(rawCodec{}))
		if err == nil {
			if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() > 0 {
				return fmt.Errorf("the collector rejected %d spans: %s", ps.GetRejectedSpans(), ps.GetErrorMessage())
			}
			return nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (the collector: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (g *grpcUploader) Close() error { return g.conn.Close() }

// encoded is a request already in protobuf's wire format.
type encoded []byte

// rawCodec sends an encoded request as it is and decodes the response as protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(encoded)
	if !ok {
		return nil, fmt.Errorf("tracing: cannot send a %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return errors.New("tracing: the response is not a protobuf message")
	}
	return proto.Unmarshal(data.Materialize(), m)
}

func (rawCodec) Name() string { return "proto" }
