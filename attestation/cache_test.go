package attestation_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

type cached struct {
	clock   *clocktesting.FakeClock
	reg     *prometheus.Registry
	metrics *attestation.Metrics
	cache   *attestation.Cache
}

func newCached(t testing.TB) *cached {
	t.Helper()
	c := &cached{clock: clocktesting.NewFakeClock(time.Now()), reg: prometheus.NewRegistry()}
	var err error
	if c.metrics, err = attestation.NewMetrics(c.reg); err != nil {
		t.Fatal(err)
	}
	if c.cache, err = attestation.NewCache(attestation.CacheOptions{Clock: c.clock, Metrics: c.metrics}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cached) verifier(t testing.TB, cfg attestation.TrustConfig) *attestation.Verifier {
	t.Helper()
	return newVerifier(t, cfg, attestation.VerifierOptions{Cache: c.cache, Metrics: c.metrics, Clock: c.clock, Timeout: 2 * time.Second})
}

// counter reads a counter series by name and result label.
func (c *cached) counter(t testing.TB, name, result string) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{result=%q}", name, result)
	return 0
}

func (c *cached) verifications(t testing.TB) float64 {
	return c.counter(t, "attest_verification_total", "passed") + c.counter(t, "attest_verification_total", "failed") +
		c.counter(t, "attest_verification_total", "error")
}

func TestConcurrentVerificationsCollapse(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	c := newCached(t)
	v := c.verifier(t, keyPolicy(t, reg, key, requireSLSA()))
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	key.Attest(t, d, slsa, provenance)
	reg.ResetRequests()

	const n = 100
	results := make([]attestation.Facts, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = v.Verify(context.Background(), reg.Tagged("team/app", "v1"), nil)
		}()
	}
	close(start)
	wg.Wait()
	for i, f := range results {
		if !f.Passed() || f.Digest != d.DigestStr() {
			t.Fatalf("result %d: %s", i, dump(f))
		}
	}
	if got := c.counter(t, "attest_verification_total", "passed"); got != 1 {
		t.Fatalf("attest_verification_total{result=passed} = %v after %d concurrent requests, want 1", got, n)
	}
	hits, misses := c.counter(t, "attest_verification_cache_requests_total", "hit"), c.counter(t, "attest_verification_cache_requests_total", "miss")
	if hits+misses != n {
		t.Fatalf("cache hits %v + misses %v != %d", hits, misses, n)
	}
	// One tag resolution and one verification: a handful of requests, not a hundred times that.
	if r := reg.Requests(); r > 12 {
		t.Fatalf("%d registry requests for one image", r)
	}
	t.Logf("%d concurrent requests: %d registry requests, %v hits, %v misses", n, reg.Requests(), hits, misses)
}

func TestCachedVerdictServesWhileRegistryDown(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	c := newCached(t)
	v := c.verifier(t, keyPolicy(t, reg, key))
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	byTag := reg.Tagged("team/app", "v1")
	first := v.Verify(context.Background(), byTag, nil)
	if !first.Passed() {
		t.Fatalf("%s", dump(first))
	}
	reg.Close()

	for _, image := range []string{d.String(), byTag} {
		got := v.Verify(context.Background(), image, nil)
		if !got.Passed() || got.Digest != d.DigestStr() || !got.VerifiedAt.Equal(first.VerifiedAt) {
			t.Fatalf("%s with the registry down: %s", image, dump(got))
		}
	}
	if got := c.verifications(t); got != 1 {
		t.Fatalf("%v verifications, want 1", got)
	}

	// Past the tag TTL the tag cannot be resolved; past the positive TTL the digest is verified again.
	c.clock.Step(attestation.DefaultTagTTL + time.Second)
	if got := v.Verify(context.Background(), byTag, nil); got.Trust.Checked || !strings.HasPrefix(got.Trust.Error, "registry "+reg.Host()+" is unreachable") {
		t.Fatalf("by tag past the tag TTL: %+v", got.Trust)
	}
	if got := v.Verify(context.Background(), d.String(), nil); !got.Passed() {
		t.Fatalf("by digest within the positive TTL: %+v", got.Trust)
	}
	c.clock.Step(attestation.DefaultPositiveTTL)
	if got := v.Verify(context.Background(), d.String(), nil); got.Trust.Checked || got.Passed() {
		t.Fatalf("by digest past the positive TTL: %+v", got.Trust)
	}
}

// TestTagMovedToUnsignedDigest: a tag that passed and then moved to an unsigned digest must not keep passing.
func TestTagMovedToUnsignedDigest(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	c := newCached(t)
	v := c.verifier(t, keyPolicy(t, reg, key))
	signed := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, signed)
	byTag := reg.Tagged("team/app", "v1")
	if got := v.Verify(context.Background(), byTag, nil); !got.Passed() {
		t.Fatalf("%s", dump(got))
	}

	unsigned := reg.PushRandomImage(t, "team/app", "v1")
	// Within the tag TTL the answer still names the digest that was verified — the one a pinned pod runs.
	if got := v.Verify(context.Background(), byTag, nil); got.Digest != signed.DigestStr() {
		t.Fatalf("within the tag TTL: digest %s, want the verified %s", got.Digest, signed.DigestStr())
	}
	c.clock.Step(attestation.DefaultTagTTL + time.Second)
	got := v.Verify(context.Background(), byTag, nil)
	if got.Passed() || got.Digest != unsigned.DigestStr() || got.Signature.Error != "no signature from authority 'release-key'" {
		t.Fatalf("after the tag moved: %s", dump(got))
	}
}

func TestNegativeVerdictExpires(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	c := newCached(t)
	v := c.verifier(t, keyPolicy(t, reg, key))
	d := reg.PushRandomImage(t, "team/app", "v1")
	if got := v.Verify(context.Background(), d.String(), nil); got.Passed() || !got.Trust.Checked {
		t.Fatalf("%s", dump(got))
	}
	key.Sign(t, d)
	if got := v.Verify(context.Background(), d.String(), nil); got.Passed() {
		t.Fatal("a failing verdict was not cached")
	}
	c.clock.Step(attestation.DefaultNegativeTTL + time.Second)
	if got := v.Verify(context.Background(), d.String(), nil); !got.Passed() {
		t.Fatalf("past the negative TTL: %s", dump(got))
	}
	if f, p := c.counter(t, "attest_verification_total", "failed"), c.counter(t, "attest_verification_total", "passed"); f != 1 || p != 1 {
		t.Fatalf("failed %v, passed %v; want 1 and 1", f, p)
	}
}

func TestUnreachedVerdictsAreNotCached(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	c := newCached(t)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{Cache: c.cache, Metrics: c.metrics, Clock: c.clock, Timeout: 200 * time.Millisecond})
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	reg.Stall(true)
	if got := v.Verify(context.Background(), d.String(), nil); got.Trust.Checked {
		t.Fatalf("%s", dump(got))
	}
	reg.Stall(false)
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := v.Verify(context.Background(), d.String(), nil)
		if got.Passed() {
			break
		}
		// The stalled verification may still be finishing its singleflight; it is not cached either way.
		if time.Now().After(deadline) {
			t.Fatalf("still failing once the registry answers: %s", dump(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPolicyChangeIsANewVerdict: verdicts are keyed by the policy hash, so a reload that changes the trusted key
// does not reuse the old verdict.
func TestPolicyChangeIsANewVerdict(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key, other := attestationtest.NewKey(t), attestationtest.NewKey(t)
	c := newCached(t)
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	if got := c.verifier(t, keyPolicy(t, reg, key)).Verify(context.Background(), d.String(), nil); !got.Passed() {
		t.Fatalf("%s", dump(got))
	}
	if got := c.verifier(t, keyPolicy(t, reg, other)).Verify(context.Background(), d.String(), nil); got.Passed() {
		t.Fatal("a verdict under the old key answered for the new policy")
	}
	if got := c.verifier(t, keyPolicy(t, reg, key)).Verify(context.Background(), d.String(), nil); !got.Passed() {
		t.Fatalf("%s", dump(got))
	}
	if got := c.verifications(t); got != 2 {
		t.Fatalf("%v verifications, want 2 (the third request is a hit)", got)
	}
}

func TestCacheIsBounded(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	cache, err := attestation.NewCache(attestation.CacheOptions{Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{Cache: cache})
	for i := range 4 {
		d := reg.PushRandomImage(t, "app", string(rune('a'+i)))
		v.Verify(context.Background(), d.String(), nil)
	}
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d verdicts, bound 2", cache.Len())
	}
	if _, err := attestation.NewCache(attestation.CacheOptions{Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}
