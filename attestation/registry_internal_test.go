package attestation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRegistryMessage(t *testing.T) {
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	live := context.Background()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"deadline", expired, context.DeadlineExceeded, "registry r.io did not answer within 2s"},
		{"429", live, &transport.Error{StatusCode: http.StatusTooManyRequests}, "rate-limited by r.io"},
		{"429 inside ping's error list", live, pingErrors{errors.New("tls: bad record"), &transport.Error{StatusCode: 429}}, "rate-limited by r.io"},
		{"401", live, &transport.Error{StatusCode: 401}, "registry r.io refused access (HTTP 401); check the pod's imagePullSecrets"},
		{"403", live, fmt.Errorf("get: %w", &transport.Error{StatusCode: 403}), "registry r.io refused access (HTTP 403); check the pod's imagePullSecrets"},
		{"503", live, &transport.Error{StatusCode: 503}, "registry r.io answered HTTP 503"},
		{"refused", live, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "registry r.io is unreachable: dial tcp: connection refused"},
		{"other", live, errors.New("odd"), "registry r.io: odd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := registryMessage(tc.ctx, tc.err, "r.io", 2*time.Second); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// pingErrors is shaped like go-containerregistry's ping error: a slice of errors without Unwrap.
type pingErrors []error

func (p pingErrors) Error() string { return "ping failed" }

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"0":                             0,
		"2":                             2 * time.Second,
		" 30 ":                          30 * time.Second,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	}
	for v, want := range cases {
		if got, ok := retryAfter(v, now); !ok || got != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon", "1.5"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("retryAfter(%q) accepted", v)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "Fri, 02 Jan 2026 03:04:15 GMT", "", "-5", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := retryAfter(s, time.Now()); ok && d < 0 {
			t.Fatalf("negative wait %v from %q", d, s)
		}
	})
}

func TestFormatBudget(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Second: "2s", 1500 * time.Millisecond: "1.5s", 1549 * time.Millisecond: "1.5s",
		300 * time.Millisecond: "300ms", 149999 * time.Microsecond: "150ms",
	} {
		if got := formatBudget(d); got != want {
			t.Errorf("formatBudget(%v) = %q, want %q", d, got, want)
		}
	}
}
