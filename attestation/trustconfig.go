package attestation

// TrustConfig is the `trust` section of policies.yaml: which images must carry signatures and attestations, from
// whom. It holds plain JSON-able values only, so the config package can decode it strictly (unknown fields are
// errors) and hand it to NewTrustPolicies, which validates it and loads keys and roots.
//
//	trust:
//	  noMatch: deny
//	  policies:
//	    - name: release
//	      images: ["registry.company.com/**", "gcr.io/company/*"]
//	      authorities:
//	        - name: release-key
//	          key: {pemFile: keys/release.pub}
//	        - name: ci
//	          keyless:
//	            roots: {pemFile: keys/ca.pem}
//	            identities: [{issuer: "https://token.actions.githubusercontent.com", subjectRegExp: "^https://github.com/company/.*"}]
//	          tlog: false
//	      attestations:
//	        - predicateType: https://slsa.dev/provenance/v1
//	          policy: |
//	            package predicate
//	            deny contains "unexpected builder" if input.predicate.builder.id != "https://github.com/company/builder"
type TrustConfig struct {
	// NoMatch says what becomes of an image no policy's images cover: deny (the default), audit or allow. The
	// verifier reports it as the trust.no_match fact; the Rego policy acts on it.
	NoMatch string `json:"noMatch,omitempty"`
	// Policies are tried in order; the first whose images match an image is the one it must satisfy.
	Policies []TrustPolicyConfig `json:"policies,omitempty"`
}

// TrustPolicyConfig is one trust policy: image globs, the authorities whose signatures count, and the attestations
// required.
type TrustPolicyConfig struct {
	Name string `json:"name"`
	// Images are globs over the parsed reference's registry/repository (no tag or digest), registry host first:
	// "*" stands for one path segment (or part of one: "app-*"), "**" for any number of segments. Docker Hub is
	// written docker.io or index.docker.io; hosts are matched case-insensitively.
	Images []string `json:"images"`
	// Authorities are alternatives: a signature from any one of them satisfies the policy.
	Authorities []AuthorityConfig `json:"authorities"`
	// Attestations are all required, each verified against the same authorities.
	Attestations []AttestationConfig `json:"attestations,omitempty"`
}

// AuthorityConfig is one trusted signer: a public key, or a certificate authority and the identities it may
// certify (keyless). Exactly one of Key and Keyless is set.
type AuthorityConfig struct {
	Name    string         `json:"name"`
	Key     *KeyConfig     `json:"key,omitempty"`
	Keyless *KeylessConfig `json:"keyless,omitempty"`
	// TLog requires a transparency-log (Rekor) inclusion proof in each signature, checked offline against the log
	// keys of keyless.trustedRootFile. Default: on when the authority has a trustedRootFile, off otherwise (setting
	// it without one is an error, since there would be no log key to check against).
	TLog *bool `json:"tlog,omitempty"`
	// CTLog requires a signed certificate timestamp in keyless certificates, checked against the CT log keys of
	// keyless.trustedRootFile. Same default and rule as TLog; keyless authorities only.
	CTLog *bool `json:"ctlog,omitempty"`
}

// KeyConfig names a PEM public key (ECDSA, RSA or Ed25519): inline, in a file (relative paths resolve against the
// config file's directory), or in a Kubernetes Secret. Exactly one is set.
type KeyConfig struct {
	PEM       string     `json:"pem,omitempty"`
	PEMFile   string     `json:"pemFile,omitempty"`
	SecretRef *SecretRef `json:"secretRef,omitempty"`
}

// SecretRef names one key of a Kubernetes Secret.
type SecretRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// KeylessConfig trusts certificates (Fulcio-style) that chain to the given roots and carry one of the identities.
type KeylessConfig struct {
	// Roots holds the root and intermediate CA certificates, PEM. Exactly one of Roots and TrustedRootFile is set.
	Roots *PEMSource `json:"roots,omitempty"`
	// TrustedRootFile is a sigstore trusted_root.json (CAs, Rekor and CT log keys, timestamp authorities), read from
	// disk at load; nothing is fetched.
	TrustedRootFile string `json:"trustedRootFile,omitempty"`
	// Identities are alternatives; at least one is required, and each names both an issuer and a subject.
	Identities []IdentityConfig `json:"identities"`
}

// PEMSource is PEM text inline or in a file. Exactly one is set.
type PEMSource struct {
	PEM     string `json:"pem,omitempty"`
	PEMFile string `json:"pemFile,omitempty"`
}

// IdentityConfig matches the certificate's OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, or the legacy
// 1.1) and subject (a SAN: URI or email), each exactly or by a regular expression (Go syntax, unanchored: write
// ^…$).
type IdentityConfig struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// AttestationConfig requires an in-toto attestation of one predicate type, optionally passing a Rego check.
type AttestationConfig struct {
	PredicateType string `json:"predicateType"`
	// Policy is a Rego module (v0 or v1 syntax) whose `deny` set, evaluated over
	// {"predicate": …, "predicate_type": …, "image": "<registry/repo@digest>"}, must be empty. It runs with the
	// same pure capabilities as ATTEST policies (no http.send, no clock, …).
	Policy string `json:"policy,omitempty"`
}

// NoMatch values.
const (
	NoMatchDeny  = "deny"
	NoMatchAudit = "audit"
	NoMatchAllow = "allow"
)
