package attestation

import (
	"bytes"
	"encoding/json"
	"time"
)

// Facts is what verification established about one image. Its JSON form and Map form are the same document, the
// part of input.images["<image as written>"] that attestation owns (the admission layer merges it with the
// reference facts: registry, repository, tag, trusted_registry):
//
//	digest                 "sha256:…", the digest verified (resolved from the tag with a manifest HEAD); "" if unknown
//	trust.policy           name of the trust policy that covers the image; "" when none does
//	trust.no_match         the configured trust.noMatch: "deny", "audit" or "allow" (what becomes of uncovered images)
//	trust.configured       false when the configuration has no trust section at all (a first run: no image can be
//	                       verified, and require-attestation says so once per object rather than once per image)
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
// A cached verdict keeps each predicate as its JSON encoding (a PredicateJSON in AttestationFacts.Predicate); the
// JSON form and Map present it exactly as the decoded predicate, and AttestationFacts.PredicateValue decodes it.
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
	Configured           bool     `json:"configured"`
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
	Predicate     any    `json:"predicate"` // as decoded from JSON, or its PredicateJSON
	Error         string `json:"error"`
}

// PredicateJSON is a predicate held as its JSON encoding, as encoding/json writes the decoded predicate (object
// keys sorted, HTML characters not escaped): a cached verdict holds its predicates so, in a sixth of the memory
// of the decoded tree. It encodes to the same JSON as the decoded predicate.
type PredicateJSON []byte

// MarshalJSON returns p (the encoder escapes HTML characters if it is set to).
func (p PredicateJSON) MarshalJSON() ([]byte, error) {
	if len(p) == 0 {
		return []byte("null"), nil
	}
	return p, nil
}

// Value decodes p as encoding/json decodes into an any (numbers as float64).
func (p PredicateJSON) Value() (any, error) {
	if len(p) == 0 {
		return nil, nil
	}
	var v any
	err := json.Unmarshal(p, &v)
	return v, err
}

// PredicateValue is the predicate as decoded from JSON (nil when none verified), decoding a PredicateJSON.
func (a AttestationFacts) PredicateValue() any {
	if p, ok := a.Predicate.(PredicateJSON); ok {
		v, err := p.Value()
		if err != nil {
			return nil // not reached: p was encoded from a decoded predicate
		}
		return v
	}
	return a.Predicate
}

// encodePredicate is the PredicateJSON of a predicate decoded from JSON; false when v is not JSON-shaped (such a
// value is kept as it is).
func encodePredicate(v any) (PredicateJSON, bool) {
	if v == nil || !jsonShaped(v) {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return PredicateJSON(bytes.Clone(b)), true
}

// jsonShaped reports whether v is made of what decoding JSON into an any yields, so that decoding its encoding
// yields v again.
func jsonShaped(v any) bool {
	switch x := v.(type) {
	case nil, bool, float64, string:
		return true
	case map[string]any:
		for _, e := range x {
			if !jsonShaped(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !jsonShaped(e) {
				return false
			}
		}
		return true
	}
	return false
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
	return map[string]any{
		"digest": f.Digest,
		"trust": map[string]any{
			"policy":                f.Trust.Policy,
			"no_match":              f.Trust.NoMatch,
			"configured":            f.Trust.Configured,
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
		"attestations": f.AttestationsMap(),
	}
}

// AttestationsMap is the attestations entry of Map, predicates decoded.
func (f Facts) AttestationsMap() []any {
	atts := make([]any, len(f.Attestations))
	for i, a := range f.Attestations {
		atts[i] = map[string]any{
			"predicate_type": a.PredicateType,
			"verified":       a.Verified,
			"signer":         a.Signer,
			"predicate":      a.PredicateValue(),
			"error":          a.Error,
		}
	}
	return atts
}
