package admission

import (
	"strconv"
	"sync"
	"weak"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/policies"
)

// attestationsMemo keeps the Rego form of the attestations of recent verdicts. A cached verdict's facts are the same
// in every admission of its image (the cache hands out the same attestations, read-only), and converting their
// predicates cost a warm admission of a 3-container Deployment about a tenth of its time. Entries are keyed by the
// identity of a verdict's attestations, held weakly: a verdict the cache drops frees its entry, and a new verdict
// never matches an old entry.
type attestationsMemo struct {
	mu      sync.Mutex
	entries map[memoKey]policies.Converted
}

type memoKey struct {
	first weak.Pointer[attestation.AttestationFacts]
	n     int
}

// maxMemoEntries bounds the memo: past it, entries of verdicts no longer held are dropped, and if that is not
// enough, all of them (the next admissions convert again). An entry holds about 8 KiB (a SLSA provenance of 0.9 KB
// as Rego values): 256 of them cover the images a rollout admits again and again at 2 MiB, where 1024 held 8 MiB
// that a serve with 10,000 cached verdicts mostly spent on images admitted once.
const maxMemoEntries = 256

// policyFacts is mergeFacts for a policy document: the attestations of each verdict go in converted, once per
// verdict. `attest image verify` prints mergeFacts' plain values instead. A cached verdict holds its predicates as
// JSON, so its attestations are merged only when the memo has no conversion of them: decoding them costs about
// what converting them does.
func (m *attestationsMemo) policyFacts(images map[string]map[string]any, facts map[string]attestation.Facts) {
	merged := make(map[string]attestation.Facts, len(facts))
	for image, f := range facts {
		f.Attestations = nil
		merged[image] = f
	}
	mergeFacts(images, merged)
	for image, f := range facts {
		img, ok := images[image]
		if !ok || len(f.Attestations) == 0 {
			continue
		}
		key := memoKey{first: weak.Make(&f.Attestations[0]), n: len(f.Attestations)}
		m.mu.Lock()
		c, ok := m.entries[key]
		m.mu.Unlock()
		if !ok {
			plain := f.AttestationsMap()
			var err error
			if c, err = policies.Convert(plain); err != nil {
				img["attestations"] = plain // policies.NewDocument reports it
				continue
			}
			m.store(key, c)
		}
		img["attestations"] = c
	}
}

func (m *attestationsMemo) store(key memoKey, c policies.Converted) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[memoKey]policies.Converted{}
	}
	if len(m.entries) >= maxMemoEntries {
		for k := range m.entries {
			if k.first.Value() == nil {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= maxMemoEntries {
			clear(m.entries)
		}
	}
	m.entries[key] = c
}

// imageEntries keeps input.images[image] of recent (image, trusted registries, verdict) triples, as facts and
// converted: the webhook admits the same verified images again and again (a Deployment's, its ReplicaSet's, each
// Pod's, every rollout's), and merging a verdict into the facts and converting them cost a new Deployment's
// admission about a tenth of its pipeline. The key holds everything an entry is made of, so a hit is the entry a
// miss would build: another image, trusted-registries configuration or verdict (a re-verification is a new
// verdict) misses.
type imageEntries struct {
	once  sync.Once
	cache *lru.Cache[imageKey, imageEntry]
}

// maxImageEntries bounds the entries: one holds an image's facts twice (as Go values and converted, about 4 KiB;
// its attestations are attestationsMemo's, shared).
const maxImageEntries = 256

type imageKey struct {
	image   string
	trusted *attestation.TrustedRegistries
	verdict bool // the verifier's facts are merged: those below are its
	digest  string
	trust   trustKey
	sig     attestation.SignatureFacts
	atts    memoKey
}

// trustKey is attestation.TrustFacts, comparable.
type trustKey struct {
	policy, noMatch, err string
	configured, checked  bool
	required             string // RequiredAttestations, each with its length before it
}

type imageEntry struct {
	facts map[string]any
	term  policies.Converted
}

// entry returns input.images[image] for trusted registries and the verdict f (nil: no verifier), built on a miss;
// converted is false when the facts cannot be converted (NewDocument reports it) and the entry is not kept.
// Entries are shared between admissions: callers must not modify them.
func (ie *imageEntries) entry(image string, trusted *attestation.TrustedRegistries, f *attestation.Facts, atts *attestationsMemo) (facts map[string]any, term policies.Converted, converted bool) {
	ie.once.Do(func() { ie.cache, _ = lru.New[imageKey, imageEntry](maxImageEntries) }) // a positive size: New cannot fail
	key := imageKey{image: image, trusted: trusted}
	if f != nil {
		key.verdict, key.digest, key.sig = true, f.Digest, f.Signature
		t := f.Trust
		key.trust = trustKey{policy: t.Policy, noMatch: t.NoMatch, err: t.Error, configured: t.Configured, checked: t.Checked, required: lengthPrefixed(t.RequiredAttestations)}
		if len(f.Attestations) > 0 {
			key.atts = memoKey{first: weak.Make(&f.Attestations[0]), n: len(f.Attestations)}
		}
	}
	if e, ok := ie.cache.Get(key); ok {
		return e.facts, e.term, true
	}
	facts = imageFacts(image, trusted)
	if f != nil {
		atts.policyFacts(map[string]map[string]any{image: facts}, map[string]attestation.Facts{image: *f})
	}
	term, err := policies.Convert(facts)
	if err != nil {
		return facts, policies.Converted{}, false
	}
	ie.cache.Add(key, imageEntry{facts: facts, term: term})
	return facts, term, true
}

// lengthPrefixed encodes a list of strings as one, injectively: ["a", "b"] and ["a\x00b"] stay apart.
func lengthPrefixed(list []string) string {
	var b []byte
	for _, e := range list {
		b = strconv.AppendInt(b, int64(len(e)), 10)
		b = append(b, ':')
		b = append(b, e...)
	}
	return string(b)
}
