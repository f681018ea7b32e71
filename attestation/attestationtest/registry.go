// Package attestationtest provides what tests of image verification need, with nothing mocked at the registry or
// crypto layer: go-containerregistry's in-memory registry served on 127.0.0.1 (with OCI 1.1 referrers), random
// images pushed to it, keys and a certificate authority the test creates, and real cosign signatures and in-toto
// attestations in both formats cosign writes (legacy .sig/.att tags and sigstore bundles as referrers).
package attestationtest

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-memory OCI registry on 127.0.0.1 that counts the requests it serves and can be told to stall
// or to rate-limit.
type Registry struct {
	server   *httptest.Server
	requests atomic.Int64

	mu         sync.Mutex
	stall      chan struct{} // non-nil: requests wait until it closes or the client gives up
	skip       int           // requests let through before the rate limit starts
	limited    int           // then n requests get 429
	retryAfter string
}

// NewRegistry starts a registry for the test's lifetime.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{}
	inner := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		stall := r.stall
		limited := false
		if r.skip > 0 {
			r.skip--
		} else if r.limited > 0 {
			limited = true
			r.limited--
		}
		retryAfter := r.retryAfter
		r.mu.Unlock()
		if stall != nil {
			select {
			case <-stall:
			case <-req.Context().Done():
				return
			}
		}
		if limited {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.Stall(false)
		r.server.Close()
	})
	return r
}

// Host is "127.0.0.1:PORT".
func (r *Registry) Host() string {
	u, _ := url.Parse(r.server.URL)
	return u.Host
}

// Requests is the number of HTTP requests served so far.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// ResetRequests sets the count back to zero.
func (r *Registry) ResetRequests() { r.requests.Store(0) }

// Stall makes requests hang (until Stall(false) or until the client gives up), or lets them through again.
func (r *Registry) Stall(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case on && r.stall == nil:
		r.stall = make(chan struct{})
	case !on && r.stall != nil:
		close(r.stall)
		r.stall = nil
	}
}

// RateLimit answers the next n requests with HTTP 429 and the given Retry-After ("" for none).
func (r *Registry) RateLimit(n int, retryAfter string) { r.RateLimitAfter(0, n, retryAfter) }

// RateLimitAfter lets skip requests through, then answers n with HTTP 429 and the given Retry-After.
func (r *Registry) RateLimitAfter(skip, n int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skip, r.limited, r.retryAfter = skip, n, retryAfter
}

// Close shuts the registry down: connections are refused from then on.
func (r *Registry) Close() { r.server.Close() }

// Ref parses a reference to a repository of this registry, e.g. r.Ref(t, "team/app:v1").
func (r *Registry) Ref(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Host() + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// PushRandomImage pushes a small random image to repo:tag (e.g. "team/app", "v1") and returns its digest reference.
func (r *Registry) PushRandomImage(t testing.TB, repo, tag string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := r.Ref(t, repo+":"+tag)
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(h.String())
}

// Image is d as the string a pod spec would carry.
func Image(d name.Digest) string { return d.String() }

// Tagged is repo:tag of this registry as a pod spec would carry it.
func (r *Registry) Tagged(repo, tag string) string { return r.Host() + "/" + repo + ":" + tag }

// GuardTransport forwards requests to allowed hosts only and records every other host a request was addressed to:
// a test shows, with it, that verification contacts nothing but the registries it was configured for.
type GuardTransport struct {
	Allowed []string
	Next    http.RoundTripper

	mu      sync.Mutex
	refused []string
}

// RoundTrip implements http.RoundTripper.
func (g *GuardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, h := range g.Allowed {
		if strings.EqualFold(req.URL.Host, h) {
			next := g.Next
			if next == nil {
				next = http.DefaultTransport
			}
			return next.RoundTrip(req)
		}
	}
	g.mu.Lock()
	g.refused = append(g.refused, req.URL.Host)
	g.mu.Unlock()
	return nil, fmt.Errorf("guard: connection to %s refused", req.URL.Host)
}

// Refused lists the hosts requests were refused for.
func (g *GuardTransport) Refused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.refused...)
}
