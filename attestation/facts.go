package attestation

import "time"

// Facts is what verification established about one image. Its JSON form and Map form are the same document, the
// part of input.images["<image as written>"] that attestation owns (the admission layer merges it with the
// reference facts: registry, repository, tag, trusted_registry):
//
//	digest                 "sha256:…", the digest verified (resolved from the tag with a manifest HEAD); "" if unknown
//	trust.policy           name of the trust policy that covers the image; "" when none does
//	trust.no_match         the configured trust.noMatch: "deny", "audit" or "allow" (what becomes of uncovered images)
//	trust.checked          true when verification ran to a verdict (the registry answered); false when it could
//	                       not run (unparsable reference, registry down, slow or rate-limiting) or no policy applies
//	trust.error            why the image does not satisfy its trust policy, written for the person at kubectl apply;
//	                       "" exactly when it does (or when no policy covers it and noMatch is allow)
//	trust.required_attestations   the predicate types the policy requires, in configured order
//	signature.verified     a signature over this digest verified against one of the policy's authorities
//	signature.signer       who signed: "sha256:<hex>" (key id: SHA-256 of the DER public key) for keys,
//	                       "<subject> (<issuer>)" for keyless certificates
//	signature.authority    the name of the authority that accepted the signature
//	signature.error        why no signature verified, e.g. "no signature from authority 'release-key'"
//	attestations[]         one entry per required predicate type, in configured order:
//	  .predicate_type      the required in-toto predicate type
//	  .verified            an attestation of that type for this digest verified and passed the predicate check
//	  .signer              as signature.signer
//	  .predicate           the verified in-toto predicate (JSON); when a verified attestation failed the
//	                       policy's predicate check, that predicate (verified false); null when none verified
//	  .error               e.g. "attestation https://slsa.dev/provenance/v1 missing",
//	                       "attestation https://slsa.dev/provenance/v1 fails its policy: unexpected builder"
//
// The verdict in one expression: trust.policy != "" && trust.checked && trust.error == "" (see Passed).
//
// Facts served from the cache are shared between requests: treat them, and the predicates in them, as read-only.
type Facts struct {
	Digest       string             `json:"digest"`
	Trust        TrustFacts         `json:"trust"`
	Signature    SignatureFacts     `json:"signature"`
	Attestations []AttestationFacts `json:"attestations"`

	// VerifiedAt is when the verdict was reached (a cached verdict keeps its time): the receipt's verified-at.
	// It is not part of the policy input.
	VerifiedAt time.Time `json:"-"`
}

// TrustFacts is Facts.Trust.
type TrustFacts struct {
	Policy               string   `json:"policy"`
	NoMatch              string   `json:"no_match"`
	Checked              bool     `json:"checked"`
	Error                string   `json:"error"`
	RequiredAttestations []string `json:"required_attestations"`
}

// SignatureFacts is Facts.Signature.
type SignatureFacts struct {
	Verified  bool   `json:"verified"`
	Signer    string `json:"signer"`
	Authority string `json:"authority"`
	Error     string `json:"error"`
}

// AttestationFacts is one entry of Facts.Attestations.
type AttestationFacts struct {
	PredicateType string `json:"predicate_type"`
	Verified      bool   `json:"verified"`
	Signer        string `json:"signer"`
	Predicate     any    `json:"predicate"`
	Error         string `json:"error"`
}

// Passed reports whether the image satisfies the trust policy that covers it.
func (f Facts) Passed() bool {
	return f.Trust.Policy != "" && f.Trust.Checked && f.Trust.Error == ""
}

// PredicateTypes lists the verified attestations' predicate types (for the receipt).
func (f Facts) PredicateTypes() []string {
	var out []string
	for _, a := range f.Attestations {
		if a.Verified {
			out = append(out, a.PredicateType)
		}
	}
	return out
}

// Map is the document of the type comment, built from the value types OPA converts without a JSON round trip
// (map[string]any, []any, string, bool; predicates as decoded from JSON).
func (f Facts) Map() map[string]any {
	required := make([]any, len(f.Trust.RequiredAttestations))
	for i, t := range f.Trust.RequiredAttestations {
		required[i] = t
	}
	atts := make([]any, len(f.Attestations))
	for i, a := range f.Attestations {
		atts[i] = map[string]any{
			"predicate_type": a.PredicateType,
			"verified":       a.Verified,
			"signer":         a.Signer,
			"predicate":      a.Predicate,
			"error":          a.Error,
		}
	}
	return map[string]any{
		"digest": f.Digest,
		"trust": map[string]any{
			"policy":                f.Trust.Policy,
			"no_match":              f.Trust.NoMatch,
			"checked":               f.Trust.Checked,
			"error":                 f.Trust.Error,
			"required_attestations": required,
		},
		"signature": map[string]any{
			"verified":  f.Signature.Verified,
			"signer":    f.Signature.Signer,
			"authority": f.Signature.Authority,
			"error":     f.Signature.Error,
		},
		"attestations": atts,
	}
}
