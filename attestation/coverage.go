package attestation

import (
	"fmt"
	"time"
)

// coverage is what is known of an image without a registry: its parsed reference, the trust policy that covers it
// and what that policy requires. p is nil when nothing remains to verify (the reference does not parse, or no
// policy covers it): f is then final.
func coverage(policies *TrustPolicies, now time.Time, image string) (f Facts, ref Reference, p *TrustPolicy) {
	f = Facts{
		Trust:        TrustFacts{NoMatch: policies.NoMatch(), Configured: policies != nil, RequiredAttestations: []string{}},
		Attestations: []AttestationFacts{},
		VerifiedAt:   now,
	}
	ref, err := ParseReference(image)
	if err != nil {
		f.Trust.Error = err.Error()
		return f, ref, nil
	}
	p = policies.Match(ref)
	if p == nil {
		if f.Trust.NoMatch != NoMatchAllow {
			f.Trust.Error = fmt.Sprintf("no trust policy covers %s/%s", ref.Registry, ref.Repository)
		}
		return f, ref, nil
	}
	f.Trust.Policy = p.name
	f.Trust.RequiredAttestations = p.RequiredAttestations()
	f.Attestations = pendingAttestations(p)
	return f, ref, p
}

// pendingAttestations lists each attestation p requires, none verified yet.
func pendingAttestations(p *TrustPolicy) []AttestationFacts {
	out := make([]AttestationFacts, len(p.requirements))
	for i, r := range p.requirements {
		out[i] = AttestationFacts{PredicateType: r.predicateType}
	}
	return out
}
