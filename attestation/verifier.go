//go:build !lean

package attestation

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"k8s.io/utils/clock"
)

// Verification results, the values of the result label of the verification metrics.
const (
	resultPassed = "passed" // the image satisfies its trust policy
	resultFailed = "failed" // verification ran and the image does not
	resultError  = "error"  // verification could not run to a verdict (registry down, slow, rate-limiting, …)
)

// Defaults of VerifierOptions.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 4
)

// VerifierOptions configure NewVerifier; the zero value is usable.
type VerifierOptions struct {
	// Timeout bounds the verification of one image (DefaultTimeout); the caller's context deadline, when sooner,
	// bounds it too. A registry that has not answered by then yields Facts with checked=false and
	// "registry <host> did not answer within <budget>".
	Timeout time.Duration
	// Concurrency bounds how many distinct images VerifyAll verifies at once (DefaultConcurrency).
	Concurrency int
	// Transport carries all registry traffic (default: go-containerregistry's DefaultTransport). It is wrapped to
	// honour HTTP 429 Retry-After within the budget.
	Transport http.RoundTripper
	// Cache, shared across configuration reloads, holds verdicts and tag resolutions; nil verifies every time.
	Cache *Cache
	// Metrics, registered once; nil records nothing.
	Metrics *Metrics
	// Clock stamps Facts.VerifiedAt and measures durations (default: the real clock).
	Clock clock.PassiveClock
}

// Verifier establishes Facts about images: it resolves tags to digests and verifies cosign signatures and in-toto
// attestations, in both formats cosign writes (OCI 1.1 referrers holding sigstore bundles first, then the legacy
// sha256-<hex>.sig/.att tags), against the trust policy that covers each image. It is safe for concurrent use; a
// configuration reload builds a new one around the same Cache and Metrics.
type Verifier struct {
	policies    *TrustPolicies
	timeout     time.Duration
	concurrency int
	transport   http.RoundTripper
	cache       *Cache
	metrics     *Metrics
	clock       clock.PassiveClock
}

// NewVerifier verifies against policies (nil: no policy covers any image).
func NewVerifier(policies *TrustPolicies, o VerifierOptions) *Verifier {
	v := &Verifier{policies: policies, timeout: o.Timeout, concurrency: o.Concurrency, transport: o.Transport,
		cache: o.Cache, metrics: o.Metrics, clock: o.Clock}
	if v.timeout <= 0 {
		v.timeout = DefaultTimeout
	}
	if v.concurrency <= 0 {
		v.concurrency = DefaultConcurrency
	}
	if v.transport == nil {
		v.transport = remote.DefaultTransport
	}
	v.transport = rateLimitTransport{next: v.transport}
	if v.clock == nil {
		v.clock = clock.RealClock{}
	}
	return v
}

// Policies is the trust configuration the verifier checks against.
func (v *Verifier) Policies() *TrustPolicies { return v.policies }

// VerifyAll verifies each distinct image once, at most Concurrency at a time, and returns Facts by image as
// written. keychain supplies registry credentials (nil: anonymous). What goes to a registry ends reserve before
// ctx's deadline (the time the caller keeps for itself); what the cache answers needs no deadline of its own.
func (v *Verifier) VerifyAll(ctx context.Context, images []string, keychain authn.Keychain, reserve time.Duration) map[string]Facts {
	out := make(map[string]Facts, len(images))
	var pending []*request
	observe, _ := ctx.Value(observerKey{}).(Observer)
	for _, img := range images {
		if _, seen := out[img]; seen {
			continue
		}
		r := v.prepare(img)
		out[img] = r.facts
		if !r.done {
			miss := r // only a request that goes to the registry is kept on the heap
			pending = append(pending, &miss)
		} else if observe != nil {
			_, end := observe(ctx, img)
			end(r.facts)
		}
	}
	if len(pending) == 0 {
		return out // all answered without the registry: no goroutines
	}
	if dl, ok := ctx.Deadline(); ok && reserve > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, v.concurrency)
	for _, r := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done(): // run answers at once with the deadline's message
			}
			rctx, end := ctx, func(Facts) {}
			if observe != nil {
				rctx, end = observe(ctx, r.image)
			}
			f := v.run(rctx, r, keychain)
			end(f)
			mu.Lock()
			out[r.image] = f
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Verify establishes the Facts of one image. It returns within the budget (Timeout, or the context's deadline
// when sooner) whatever the registry does. keychain supplies registry credentials (nil: anonymous).
func (v *Verifier) Verify(ctx context.Context, image string, keychain authn.Keychain) Facts {
	r := v.prepare(image)
	if r.done {
		return r.facts
	}
	miss := r // only a request that goes to the registry is kept on the heap
	return v.run(ctx, &miss, keychain)
}

// request is one image on its way to Facts.
type request struct {
	image string
	ref   Reference
	p     *TrustPolicy
	facts Facts // final when done, else the facts so far
	done  bool
}

// prepare does what needs no registry: parse the reference, find the trust policy, consult the cache. (A value: a
// cached verdict, the common case, needs no request kept on the heap.)
func (v *Verifier) prepare(image string) request {
	f, ref, p := coverage(v.policies, v.clock.Now(), image)
	r := request{image: image, done: true, facts: f}
	if p == nil {
		return r
	}
	if out, ok := v.cache.lookup(tagKey(ref), ref.Digest, verdictKey(ref, p)); ok {
		r.facts = out // a cached verdict needs no budget, goroutine or registry client
		return r
	}
	r.ref, r.p, r.done = ref, p, false
	return r
}

// run verifies a prepared request within its budget.
func (v *Verifier) run(ctx context.Context, r *request, keychain authn.Keychain) Facts {
	f := r.facts
	if ctx.Err() != nil {
		f.Trust.Error = "not verified: the request's time budget was already spent"
		return f
	}
	budget := v.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < budget {
			budget = left
		}
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	done := make(chan Facts, 1)
	go func(f Facts) { done <- v.verify(ctx, r.ref, r.p, keychain, budget, f) }(f)
	select {
	case out := <-done:
		return out
	case <-ctx.Done():
		// Whatever is still waiting on the network is cancelled with ctx; the answer does not wait for it.
		f.Trust.Error = registryMessage(ctx, ctx.Err(), r.ref.Registry, budget)
		return f
	}
}

// verify resolves the digest and verifies it, through the cache when there is one.
func (v *Verifier) verify(ctx context.Context, ref Reference, p *TrustPolicy, keychain authn.Keychain, budget time.Duration, f Facts) Facts {
	// Registry and repository are the parts the runtime pulls from: built from them, never re-parsed from their
	// joined text, which go-containerregistry would read differently ("foo/app" is Docker Hub's to it).
	reg, err := name.NewRegistry(ref.Registry)
	if err != nil {
		f.Trust.Error = err.Error()
		return f
	}
	repo := reg.Repo(ref.Repository)
	client, err := newRegistryClient(repo, keychain, v.transport)
	if err != nil {
		f.Trust.Error = err.Error()
		return f
	}
	digest := ref.Digest
	if digest == "" {
		tag := repo.Tag(ref.Tag)
		digest, err = v.cache.resolveTag(ctx, tagKey(ref), func(ctx context.Context) (string, error) {
			return client.resolve(ctx, tag)
		})
		if err != nil {
			if isNotFound(err) {
				f.Trust.Error = fmt.Sprintf("image %s not found in registry %s", tag.String(), ref.Registry)
			} else {
				f.Trust.Error = registryMessage(ctx, err, ref.Registry, budget)
			}
			v.metrics.verified(resultError, 0)
			return f
		}
	}
	key := verdictKey(ref, p)(digest)
	base := f // the shared verification may outlive this call: it gets its own copy
	out, err := v.cache.verdict(ctx, key, func(ctx context.Context) Facts {
		start := v.clock.Now()
		res := v.verifyDigest(ctx, client, repo.Digest(digest), p, budget, base)
		v.metrics.verified(outcome(res), v.clock.Since(start))
		return res
	})
	if err != nil { // gave up waiting for a verification another request started
		f.Digest = digest
		f.Trust.Error = registryMessage(ctx, err, ref.Registry, budget)
		return f
	}
	return out
}

// tagKey names a tag's resolution in the cache: registry, repository and tag (cacheKey); "" for digest references.
func tagKey(ref Reference) string {
	if ref.Digest != "" {
		return ""
	}
	return cacheKey(ref.Registry, ref.Repository, ref.Tag)
}

// verdictKey names a verdict in the cache: the repository (signatures are found per repository), the digest and
// the hash of the trust policy it was judged by (cacheKey).
func verdictKey(ref Reference, p *TrustPolicy) func(digest string) string {
	return func(digest string) string { return cacheKey(ref.Registry, ref.Repository, digest, p.hash) }
}

// cacheKey is the SHA-256 of parts, each after its length: 32 bytes however long the names, where a cache of
// 10,000 verdicts held them at full length (a fifth of a cached verdict's memory with its tag's).
func cacheKey(parts ...string) string {
	var buf [512]byte
	b := buf[:0]
	for _, part := range parts {
		b = append(binary.AppendUvarint(b, uint64(len(part))), part...)
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}

func outcome(f Facts) string {
	switch {
	case !f.Trust.Checked:
		return resultError
	case f.Trust.Error == "":
		return resultPassed
	}
	return resultFailed
}

// verifyDigest gathers and verifies the evidence for one digest: sigstore bundles among the OCI referrers first,
// then, for whatever they leave unproven, the legacy signature and attestation tags.
func (v *Verifier) verifyDigest(ctx context.Context, c *registryClient, d name.Digest, p *TrustPolicy, budget time.Duration, f Facts) Facts {
	f.Digest = d.DigestStr()
	f.VerifiedAt = v.clock.Now()
	f.Attestations = pendingAttestations(p)
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		f.Trust.Error = err.Error()
		return f
	}
	host := d.RegistryStr()
	fail := func(err error) Facts {
		f.Trust.Error = registryMessage(ctx, err, host, budget)
		return f
	}

	var found []*finding
	opts := c.oci(ctx)
	refs, err := c.referrerDigests(ctx, d)
	if err != nil {
		return fail(err)
	}
	repo := d.Repository
	for _, rd := range refs {
		b, err := ociremote.Bundle(repo.Digest(rd), opts...)
		if err != nil {
			if registryFailure(ctx, err) {
				return fail(err) // never let a rate limit or an outage pass for "no signature"
			}
			continue // not a sigstore bundle
		}
		if fd := examineBundle(ctx, b, h, p.authorities); fd != nil {
			found = append(found, fd)
		}
	}

	if !signatureProven(found) {
		tag, err := ociremote.SignatureTag(d, opts...)
		if err != nil {
			return fail(err)
		}
		sigs, err := ociremote.Signatures(tag, opts...)
		if err != nil {
			return fail(err)
		}
		layers, err := sigs.Get()
		if err != nil {
			return fail(err)
		}
		for _, s := range layers {
			s, err := static.Copy(s) // fetch each layer once, however many authorities look at it
			if err != nil {
				return fail(err)
			}
			found = append(found, examineLegacySignature(ctx, s, h, p.authorities))
		}
	}

	imageRef := d.Repository.Name() + "@" + d.DigestStr()
	if !attestationsProven(ctx, found, p, imageRef) {
		tag, err := ociremote.AttestationTag(d, opts...)
		if err != nil {
			return fail(err)
		}
		atts, err := ociremote.Signatures(tag, opts...)
		if err != nil {
			return fail(err)
		}
		layers, err := atts.Get()
		if err != nil {
			return fail(err)
		}
		for _, a := range layers {
			a, err := static.Copy(a)
			if err != nil {
				return fail(err)
			}
			if fd := examineLegacyAttestation(ctx, a, h, p.authorities); fd != nil {
				found = append(found, fd)
			}
		}
		attestationsProven(ctx, found, p, imageRef)
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	f.Trust.Checked = true
	judge(&f, found, p)
	return f
}

func signatureProven(found []*finding) bool {
	for _, fd := range found {
		if fd.signature && fd.accepted != nil {
			return true
		}
	}
	return false
}

// attestationsProven runs the predicate checks of accepted attestations not yet checked, and reports whether
// every requirement has an accepted attestation that passes its check.
func attestationsProven(ctx context.Context, found []*finding, p *TrustPolicy, image string) bool {
	all := true
	for _, r := range p.requirements {
		ok := false
		for _, fd := range found {
			if fd.signature || fd.accepted == nil || fd.predicateType != r.predicateType {
				continue
			}
			if !fd.policyRun {
				fd.policyRun = true
				if r.check != nil {
					msgs, err := r.check.eval(ctx, r.predicateType, fd.predicate, image)
					if err != nil {
						msgs = []string{"predicate check failed: " + err.Error()}
					}
					fd.policyDeny = msgs
				}
			}
			if len(fd.policyDeny) == 0 {
				ok = true
			}
		}
		all = all && ok
	}
	return all
}

// judge turns the findings into Facts.
func judge(f *Facts, found []*finding, p *TrustPolicy) {
	var errs []string
	var sigs []*finding
	for _, fd := range found {
		if fd.signature {
			sigs = append(sigs, fd)
		}
	}
	for _, fd := range sigs {
		if fd.accepted != nil {
			f.Signature = SignatureFacts{Verified: true, Signer: fd.signer, Authority: fd.accepted.name}
			break
		}
	}
	if !f.Signature.Verified {
		msg := "no signature from authority " + authorityNames(p.authorities)
		if len(sigs) > 0 {
			msg += " (" + foundSummary(len(sigs), "signature", sigs) + ")"
		}
		f.Signature.Error = msg
		errs = append(errs, msg)
	}

	for i, r := range p.requirements {
		a := &f.Attestations[i]
		var same []*finding
		var others []string
		for _, fd := range found {
			switch {
			case fd.signature:
			case fd.predicateType == r.predicateType:
				same = append(same, fd)
			default:
				others = append(others, fd.predicateType)
			}
		}
		var denied *finding
		for _, fd := range same {
			if fd.accepted == nil {
				continue
			}
			if len(fd.policyDeny) == 0 {
				a.Verified, a.Signer, a.Predicate = true, fd.signer, fd.predicate
				break
			}
			if denied == nil {
				denied = fd
			}
		}
		switch {
		case a.Verified:
		case denied != nil:
			a.Signer, a.Predicate = denied.signer, denied.predicate
			a.Error = fmt.Sprintf("attestation %s fails its policy: %s", r.predicateType, strings.Join(denied.policyDeny, "; "))
		case len(same) > 0:
			a.Error = fmt.Sprintf("attestation %s not from authority %s (%s)", r.predicateType, authorityNames(p.authorities), foundSummary(len(same), "attestation", same))
		default:
			a.Error = fmt.Sprintf("attestation %s missing", r.predicateType)
			if len(others) > 0 {
				a.Error += " (found " + strings.Join(dedupe(others), ", ") + ")"
			}
		}
		if a.Error != "" {
			errs = append(errs, a.Error)
		}
	}
	f.Trust.Error = strings.Join(errs, "; ")
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
