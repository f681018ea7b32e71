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
