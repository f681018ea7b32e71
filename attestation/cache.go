package attestation

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unique"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
)

// Defaults of CacheOptions.
const (
	DefaultCacheSize   = 1024
	DefaultPositiveTTL = 10 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
	DefaultTagTTL      = 10 * time.Second
)

// CacheOptions configure NewCache; the zero value takes the defaults.
type CacheOptions struct {
	// Size bounds the verdicts held (least recently used go first), and separately the tag resolutions.
	Size int
	// PositiveTTL is how long a passing verdict is reused.
	PositiveTTL time.Duration
	// NegativeTTL is how long a failing verdict is reused. Verdicts that could not be reached (registry down,
	// slow, rate-limiting) are never cached: the next request tries again.
	NegativeTTL time.Duration
	// TagTTL is how long a tag's resolution to a digest is reused; negative disables it. Keep it short: a tag
	// moved to another digest is seen once it expires, and the new digest is verified on its own (the verdict
	// cache is keyed by digest). Pods are pinned to the digest that was verified, so what runs is what passed.
	TagTTL time.Duration
	// Clock decides expiry (default: the real clock).
	Clock clock.PassiveClock
	// Metrics counts lookups (hit/miss); nil records nothing.
	Metrics *Metrics
}

// Cache holds verification verdicts keyed by repository, digest and trust-policy hash, and tag resolutions, and
// collapses concurrent verifications of one key into one (singleflight). Create it once per process and pass it to
// each Verifier built on a configuration reload: a changed policy has a different hash, so its verdicts are new.
type Cache struct {
	o          CacheOptions
	verdicts   *lru.Cache[string, verdictEntry]
	tags       *lru.Cache[string, tagEntry]
	flights    singleflight.Group
	tagFlights singleflight.Group
}

type verdictEntry struct {
	facts   Facts
	expires time.Time
}

type tagEntry struct {
	digest  string
	expires time.Time
}

// NewCache builds an empty cache.
func NewCache(o CacheOptions) (*Cache, error) {
	if o.Size == 0 {
		o.Size = DefaultCacheSize
	}
	if o.Size < 0 {
		return nil, fmt.Errorf("cache size %d is negative", o.Size)
	}
	if o.PositiveTTL == 0 {
		o.PositiveTTL = DefaultPositiveTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.TagTTL == 0 {
		o.TagTTL = DefaultTagTTL
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	verdicts, err := lru.New[string, verdictEntry](o.Size)
	if err != nil {
		return nil, err
	}
	tags, err := lru.New[string, tagEntry](o.Size)
	if err != nil {
		return nil, err
	}
	return &Cache{o: o, verdicts: verdicts, tags: tags}, nil
}

// verdict returns the cached verdict for key, or runs verify once for all concurrent callers of key and caches
// what it returns. The shared verification runs under the first caller's deadline but not its cancellation; each
// caller stops waiting when its own context ends (the error is then ctx's). A nil cache just runs verify.
func (c *Cache) verdict(ctx context.Context, key string, verify func(context.Context) Facts) (Facts, error) {
	if c == nil {
		return verify(ctx), nil
	}
	if e, ok := c.verdicts.Get(key); ok && c.o.Clock.Now().Before(e.expires) {
		c.o.Metrics.cacheLookup(true)
		return e.facts, nil
	}
	c.o.Metrics.cacheLookup(false)
	ch := c.flights.DoChan(key, func() (any, error) {
		// A flight that ended between the lookup above and this one has stored the verdict: use it, or two
		// verifications of one digest would run where one was asked for.
		if e, ok := c.verdicts.Get(key); ok && c.o.Clock.Now().Before(e.expires) {
			return e.facts, nil
		}
		wctx, cancel := detach(ctx)
		defer cancel()
		f := verify(wctx)
		if ttl := c.ttl(f); ttl > 0 {
			f = compactFacts(f) // what every caller gets, as every later hit does
			if i := strings.Index(key, f.Digest); f.Digest != "" && i >= 0 {
				f.Digest = key[i : i+len(f.Digest)] // the key names the digest: one copy of it
			}
			c.verdicts.Add(key, verdictEntry{facts: f, expires: c.o.Clock.Now().Add(ttl)})
		}
		return f, nil
	})
	select {
	case r := <-ch:
		return r.Val.(Facts), nil
	case <-ctx.Done():
		return Facts{}, ctx.Err()
	}
}

// lookup answers from the cache alone: the tag's cached digest (or digest, for a digest reference: tagKey ""),
// then that digest's cached verdict. Only a hit is counted; a miss goes on to verdict, which counts it.
func (c *Cache) lookup(tagKey, digest string, verdictKey func(digest string) string) (Facts, bool) {
	if c == nil {
		return Facts{}, false
	}
	now := c.o.Clock.Now()
	if tagKey != "" {
		if c.o.TagTTL < 0 {
			return Facts{}, false
		}
		e, ok := c.tags.Get(tagKey)
		if !ok || !now.Before(e.expires) {
			return Facts{}, false
		}
		digest = e.digest
	}
	e, ok := c.verdicts.Get(verdictKey(digest))
	if !ok || !now.Before(e.expires) {
		return Facts{}, false
	}
	c.o.Metrics.cacheLookup(true)
	return e.facts, true
}

// compactFacts is f as a cached verdict holds it, in the least memory that gives the same JSON and Map forms: each
// predicate as its JSON encoding (a decoded predicate of 1 KB of JSON takes about 5 KB of maps and interfaces),
// and the strings that recur from verdict to verdict (signers, messages) shared. The attestations are copied: f's
// own may be shared with the caller.
func compactFacts(f Facts) Facts {
	f.Trust.Error = intern(f.Trust.Error)
	f.Signature.Signer = intern(f.Signature.Signer)
	f.Signature.Error = intern(f.Signature.Error)
	atts := make([]AttestationFacts, len(f.Attestations))
	for i, a := range f.Attestations {
		a.Signer = intern(a.Signer)
		a.Error = intern(a.Error)
		if p, ok := encodePredicate(a.Predicate); ok {
			a.Predicate = p
		}
		atts[i] = a
	}
	f.Attestations = atts
	return f
}

// intern returns the one copy of s that every cached verdict shares.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

func (c *Cache) ttl(f Facts) time.Duration {
	switch {
	case !f.Trust.Checked:
		return 0
	case f.Trust.Error == "":
		return c.o.PositiveTTL
	}
	return c.o.NegativeTTL
}

// resolveTag returns the cached digest of a tag, or resolves it once for all concurrent callers. Failures are
// not cached.
func (c *Cache) resolveTag(ctx context.Context, key string, resolve func(context.Context) (string, error)) (string, error) {
	if c == nil || c.o.TagTTL < 0 {
		return resolve(ctx)
	}
	if e, ok := c.tags.Get(key); ok && c.o.Clock.Now().Before(e.expires) {
		return e.digest, nil
	}
	ch := c.tagFlights.DoChan(key, func() (any, error) {
		wctx, cancel := detach(ctx)
		defer cancel()
		d, err := resolve(wctx)
		if err == nil {
			c.tags.Add(key, tagEntry{digest: d, expires: c.o.Clock.Now().Add(c.o.TagTTL)})
		}
		return d, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Len is the number of verdicts held (expired ones included until evicted).
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	return c.verdicts.Len()
}

// detach keeps ctx's values and deadline but not its cancellation, for work shared by several callers.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, dl)
	}
	return context.WithCancel(base)
}
