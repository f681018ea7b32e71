//go:build !lean

package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/tracing"
)

// TestTracingRefusesBadEndpoints: --otlp-endpoint must say plaintext or TLS, and name a port.
func TestTracingRefusesBadEndpoints(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		ratio    float64
		want     string
	}{
		{"collector:4317", 1, "want http://HOST:PORT"},
		{"grpc://collector:4317", 1, "want http://HOST:PORT"},
		{"http://collector", 1, "want http://HOST:PORT"},
		{"http://collector:4317/v1/traces", 1, "takes no path"},
		{"http://collector:4317", 0, "--otlp-sample-ratio 0"},
		{"http://collector:4317", 1.5, "--otlp-sample-ratio 1.5"},
	} {
		_, err := tracing.New(context.Background(), tracing.Options{Endpoint: tc.endpoint, SampleRatio: tc.ratio})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (ratio %v): error %v, want it to say %q", tc.endpoint, tc.ratio, err, tc.want)
		}
	}
}

// TestTracingRefusesBadEnvironment: exporter settings from the environment that cannot be used stop start-up,
// saying which.
func TestTracingRefusesBadEnvironment(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"OTEL_EXPORTER_OTLP_HEADERS", "api-key", `OTEL_EXPORTER_OTLP_HEADERS: "api-key" is not key=value`},
		{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem", "OTEL_EXPORTER_OTLP_CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			_, err := tracing.New(context.Background(), tracing.Options{Endpoint: "https://collector:4317", SampleRatio: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}
