//go:build !lean

package attestation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
)

// registryClient is one verification's view of one repository: credentials come from the caller's keychain, every
// call carries the context it is given (the verification budget), and signatures are looked up in the image's own
// repository, never where $COSIGN_REPOSITORY would point. Its puller performs the registry's ping and token
// exchange once for all the calls of a verification.
type registryClient struct {
	repo   name.Repository
	base   []remote.Option
	puller *remote.Puller
}

func newRegistryClient(repo name.Repository, keychain authn.Keychain, rt http.RoundTripper) (*registryClient, error) {
	if keychain == nil {
		keychain = anonymous{}
	}
	base := []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(keychain),
		remote.WithUserAgent("attest"),
		// No blind retries: a retry can only be honoured within the budget, which the transport decides (429).
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	puller, err := remote.NewPuller(base...)
	if err != nil {
		return nil, err
	}
	return &registryClient{repo: repo, base: base, puller: puller}, nil
}

// remote is the go-containerregistry options for calls bounded by ctx.
func (c *registryClient) remote(ctx context.Context) []remote.Option {
	return append(c.base[:len(c.base):len(c.base)], remote.WithContext(ctx), remote.Reuse(c.puller))
}

// oci is the cosign options for calls bounded by ctx, with the target repository explicit.
func (c *registryClient) oci(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(c.remote(ctx)...), ociremote.WithTargetRepository(c.repo)}
}

type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }

// resolve returns the digest a tag names now (a manifest HEAD).
func (c *registryClient) resolve(ctx context.Context, tag name.Tag) (string, error) {
	desc, err := remote.Head(tag, c.remote(ctx)...)
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// bundleArtifactPrefix is the media type prefix of sigstore bundles stored as OCI referrers.
const bundleArtifactPrefix = "application/vnd.dev.sigstore.bundle"

// referrerDigests lists the referrers of d that may hold sigstore bundles. A registry without the referrers API
// answers through go-containerregistry's tag-schema fallback; none is an empty list.
func (c *registryClient) referrerDigests(ctx context.Context, d name.Digest) ([]string, error) {
	idx, err := ociremote.Referrers(d, "", c.oci(ctx)...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range idx.Manifests {
		at := m.ArtifactType
		if at != "" && !strings.HasPrefix(at, bundleArtifactPrefix) && at != "application/vnd.oci.empty.v1+json" {
			continue // an SBOM, a legacy signature, …: not a bundle
		}
		out = append(out, m.Digest.String())
	}
	return out, nil
}

// registryMessage turns a registry failure into the sentence a person at kubectl apply reads: which registry,
// what happened, within which budget.
func registryMessage(ctx context.Context, err error, host string, budget time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("registry %s did not answer within %s", host, formatBudget(budget))
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Sprintf("verification against registry %s was cancelled", host)
	}
	if te, ok := asTransportError(err); ok {
		switch te.StatusCode {
		case http.StatusTooManyRequests:
			return "rate-limited by " + host
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("registry %s refused access (HTTP %d); check the pod's imagePullSecrets", host, te.StatusCode)
		case http.StatusNotFound:
			return fmt.Sprintf("not found in registry %s", host)
		}
		return fmt.Sprintf("registry %s answered HTTP %d", host, te.StatusCode)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return fmt.Sprintf("registry %s is unreachable: %v", host, err)
	}
	return fmt.Sprintf("registry %s: %v", host, err)
}

// registryFailure tells a registry that failed to answer (HTTP error, network, deadline) from content that is
// not what was expected (a referrer that is not a sigstore bundle).
func registryFailure(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := asTransportError(err); ok {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// asTransportError finds the registry's HTTP error in err, also inside go-containerregistry's ping error, which
// joins its https and http attempts in a slice type without Unwrap.
func asTransportError(err error) (*transport.Error, bool) {
	var te *transport.Error
	if errors.As(err, &te) {
		return te, true
	}
	if v := reflect.ValueOf(err); v.Kind() == reflect.Slice {
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok {
				if te, ok := asTransportError(e); ok {
					return te, true
				}
			}
		}
	}
	return nil, false
}

// formatBudget prints a budget the way a person would say it: 2s, 1.5s, 300ms.
func formatBudget(d time.Duration) string {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// isNotFound reports an HTTP 404 from the registry.
func isNotFound(err error) bool {
	te, ok := asTransportError(err)
	return ok && te.StatusCode == http.StatusNotFound
}

// rateLimitTransport honours a registry's Retry-After on HTTP 429, but only when waiting still leaves time before
// the request's deadline; otherwise (or without Retry-After) the 429 goes back to the caller, which reports
// "rate-limited by <registry>". Only bodiless idempotent requests are retried, at most maxRateLimitRetries times.
type rateLimitTransport struct {
	next http.RoundTripper
}

const maxRateLimitRetries = 3

func (t rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || attempt == maxRateLimitRetries ||
			(req.Method != http.MethodGet && req.Method != http.MethodHead) || req.Body != nil && req.Body != http.NoBody {
			return resp, err
		}
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		deadline, bounded := req.Context().Deadline()
		if !ok || !bounded || time.Now().Add(wait).After(deadline.Add(-10*time.Millisecond)) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
