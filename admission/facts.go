package admission

import (
	"sync"
	"weak"

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
