package attestation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TrustPolicies is a validated trust configuration with its keys and roots loaded and its checks compiled. It is
// immutable; a configuration reload builds a new one.
type TrustPolicies struct {
	noMatch  string
	policies []*TrustPolicy
	hash     string
}

// TrustPolicy is one compiled policy.
type TrustPolicy struct {
	name         string
	globs        []imageGlob
	authorities  []*authority
	requirements []*requirement
	hash         string
}

// authority is a compiled AuthorityConfig: a key verifier, or keyless trust material and identities.
type authority struct {
	name string

	key   signature.Verifier // key authorities
	keyID string

	material      root.TrustedMaterial // keyless authorities
	identities    []IdentityConfig
	signedTimes   bool // the trusted root has timestamp authorities: use their timestamps for certificate validity
	tlog, ctlog   bool
	keylessSource string // "roots" or "trustedRootFile", for messages
}

// requirement is one required attestation.
type requirement struct {
	predicateType string
	check         *predicateCheck // nil without a policy
}

// TrustOption configures NewTrustPolicies.
type TrustOption func(*loader)

// WithSecretReader lets key authorities name a Kubernetes Secret (key.secretRef).
func WithSecretReader(r SecretReader) TrustOption {
	return func(l *loader) { l.secrets = r }
}

// NewTrustPolicies validates cfg, reads every key, root and trusted-root file it names (a relative path resolves
// against baseDir, the config file's directory), compiles identity patterns, image globs and predicate checks, and
// hashes each policy for cache keys. Errors name the field, e.g.
// "trust.policies[0].authorities[1].keyless.identities: at least one identity is required"; all are reported at once.
// Nothing here touches the network, the public Sigstore TUF repository or $HOME.
func NewTrustPolicies(cfg TrustConfig, baseDir string, opts ...TrustOption) (*TrustPolicies, error) {
	l := loader{baseDir: baseDir}
	for _, o := range opts {
		o(&l)
	}
	var errs []error
	fail := func(path string, err error) { errs = append(errs, fmt.Errorf("%s: %w", path, err)) }

	t := &TrustPolicies{noMatch: cfg.NoMatch}
	switch cfg.NoMatch {
	case "":
		t.noMatch = NoMatchDeny
	case NoMatchDeny, NoMatchAudit, NoMatchAllow:
	default:
		fail("trust.noMatch", fmt.Errorf("%q is not one of deny, audit, allow", cfg.NoMatch))
	}
	names := map[string]int{}
	for i, pc := range cfg.Policies {
		path := fmt.Sprintf("trust.policies[%d]", i)
		if pc.Name == "" {
			fail(path+".name", errors.New("a name is required"))
		} else if j, dup := names[pc.Name]; dup {
			fail(path+".name", fmt.Errorf("%q is already the name of trust.policies[%d]", pc.Name, j))
		} else {
			names[pc.Name] = i
		}
		p, perrs := compilePolicy(path, pc, l)
		errs = append(errs, perrs...)
		if p != nil {
			t.policies = append(t.policies, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	h := sha256.New()
	fmt.Fprintf(h, "noMatch=%s\n", t.noMatch)
	for _, p := range t.policies {
		fmt.Fprintf(h, "%s\n", p.hash)
	}
	t.hash = hex.EncodeToString(h.Sum(nil))
	return t, nil
}

func compilePolicy(path string, pc TrustPolicyConfig, l loader) (*TrustPolicy, []error) {
	var errs []error
	fail := func(p string, err error) { errs = append(errs, fmt.Errorf("%s: %w", p, err)) }
	p := &TrustPolicy{name: pc.Name}
	if len(pc.Images) == 0 {
		fail(path+".images", errors.New("at least one image glob is required"))
	}
	for i, g := range pc.Images {
		glob, err := compileImageGlob(g)
		if err != nil {
			fail(fmt.Sprintf("%s.images[%d]", path, i), err)
			continue
		}
		p.globs = append(p.globs, glob)
	}
	if len(pc.Authorities) == 0 {
		fail(path+".authorities", errors.New("at least one authority is required"))
	}
	digest := policyDigest{Version: 1, Name: pc.Name, Images: pc.Images}
	authNames := map[string]int{}
	for i, ac := range pc.Authorities {
		apath := fmt.Sprintf("%s.authorities[%d]", path, i)
		if ac.Name == "" {
			fail(apath+".name", errors.New("a name is required"))
		} else if j, dup := authNames[ac.Name]; dup {
			fail(apath+".name", fmt.Errorf("%q is already the name of authorities[%d]", ac.Name, j))
		} else {
			authNames[ac.Name] = i
		}
		a, ad, aerrs := compileAuthority(apath, ac, l)
		errs = append(errs, aerrs...)
		if a != nil {
			p.authorities = append(p.authorities, a)
			digest.Authorities = append(digest.Authorities, ad)
		}
	}
	types := map[string]int{}
	for i, ac := range pc.Attestations {
		apath := fmt.Sprintf("%s.attestations[%d]", path, i)
		if ac.PredicateType == "" {
			fail(apath+".predicateType", errors.New("a predicate type is required, e.g. https://slsa.dev/provenance/v1"))
			continue
		}
		if j, dup := types[ac.PredicateType]; dup {
			fail(apath+".predicateType", fmt.Errorf("%q is already required by attestations[%d]", ac.PredicateType, j))
			continue
		}
		types[ac.PredicateType] = i
		r := &requirement{predicateType: ac.PredicateType}
		if ac.Policy != "" {
			c, err := compilePredicateCheck(fmt.Sprintf("%s/%s.rego", pc.Name, ac.PredicateType), ac.Policy)
			if err != nil {
				fail(apath+".policy", err)
				continue
			}
			r.check = c
		}
		p.requirements = append(p.requirements, r)
		digest.Attestations = append(digest.Attestations, ac)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	b, err := json.Marshal(digest)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	sum := sha256.Sum256(b)
	p.hash = hex.EncodeToString(sum[:])
	return p, nil
}

// policyDigest is what a policy's hash covers: its configuration with every key and root resolved to its content,
// so rotating a key file changes the hash (and so invalidates cached verdicts) even if the YAML does not change.
type policyDigest struct {
	Version      int
	Name         string
	Images       []string
	Authorities  []authorityDigest
	Attestations []AttestationConfig
}

type authorityDigest struct {
	Name        string
	KeyDER      []byte   `json:",omitempty"`
	CAs         [][]byte `json:",omitempty"`
	TrustedRoot string   `json:",omitempty"` // sha256 of the file
	Identities  []IdentityConfig
	TLog, CTLog bool
}

func compileAuthority(path string, ac AuthorityConfig, l loader) (*authority, authorityDigest, []error) {
	var errs []error
	fail := func(p string, err error) { errs = append(errs, fmt.Errorf("%s: %w", p, err)) }
	a := &authority{name: ac.Name}
	d := authorityDigest{Name: ac.Name}
	switch {
	case ac.Key != nil && ac.Keyless != nil:
		fail(path, errors.New("set one of key and keyless, not both"))
	case ac.Key == nil && ac.Keyless == nil:
		fail(path, errors.New("one of key and keyless is required"))
	case ac.Key != nil:
		if ac.TLog != nil && *ac.TLog {
			fail(path+".tlog", errors.New("transparency-log checks need the log's keys, which only a keyless trustedRootFile provides; set tlog: false for a key authority"))
		}
		if ac.CTLog != nil && *ac.CTLog {
			fail(path+".ctlog", errors.New("certificate transparency applies to keyless authorities only"))
		}
		pub, err := l.publicKey(ac.Key)
		if err != nil {
			fail(path+".key", err)
			break
		}
		if a.key, err = keyVerifier(pub); err != nil {
			fail(path+".key", err)
			break
		}
		if a.keyID, err = keyID(pub); err != nil {
			fail(path+".key", err)
			break
		}
		d.KeyDER, _ = cryptoutils.MarshalPublicKeyToDER(pub)
	default:
		kl := ac.Keyless
		kpath := path + ".keyless"
		if len(kl.Identities) == 0 {
			fail(kpath+".identities", errors.New("at least one identity is required: without one, any certificate the roots issued would be accepted"))
		}
		for i, id := range kl.Identities {
			ipath := fmt.Sprintf("%s.identities[%d]", kpath, i)
			if err := checkIdentity(id); err != nil {
				fail(ipath, err)
				continue
			}
			a.identities = append(a.identities, id)
		}
		d.Identities = kl.Identities
		switch {
		case kl.Roots != nil && kl.TrustedRootFile != "":
			fail(kpath, errors.New("set one of roots and trustedRootFile, not both"))
		case kl.Roots != nil:
			a.keylessSource = "roots"
			data, err := l.source(kl.Roots.PEM, kl.Roots.PEMFile)
			if err != nil {
				fail(kpath+".roots", err)
				break
			}
			if a.material, d.CAs, err = caMaterial(data); err != nil {
				fail(kpath+".roots", err)
			}
			if ac.TLog != nil && *ac.TLog {
				fail(path+".tlog", errors.New("transparency-log checks need the log's keys: use keyless.trustedRootFile, or set tlog: false"))
			}
			if ac.CTLog != nil && *ac.CTLog {
				fail(path+".ctlog", errors.New("certificate transparency checks need the CT log's keys: use keyless.trustedRootFile, or set ctlog: false"))
			}
		case kl.TrustedRootFile != "":
			a.keylessSource = "trustedRootFile"
			p := kl.TrustedRootFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(l.baseDir, p)
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				fail(kpath+".trustedRootFile", err)
				break
			}
			tr, err := root.NewTrustedRootFromJSON(raw)
			if err != nil {
				fail(kpath+".trustedRootFile", fmt.Errorf("not a sigstore trusted root: %w", err))
				break
			}
			if len(tr.FulcioCertificateAuthorities()) == 0 {
				fail(kpath+".trustedRootFile", errors.New("it lists no certificate authority"))
			}
			a.material = tr
			a.signedTimes = len(tr.TimestampingAuthorities()) > 0
			a.tlog = ac.TLog == nil || *ac.TLog
			a.ctlog = ac.CTLog == nil || *ac.CTLog
			if a.tlog && len(tr.RekorLogs()) == 0 {
				fail(path+".tlog", errors.New("the trusted root lists no transparency log; set tlog: false or use a trusted root with one"))
			}
			if a.ctlog && len(tr.CTLogs()) == 0 {
				fail(path+".ctlog", errors.New("the trusted root lists no CT log; set ctlog: false or use a trusted root with one"))
			}
			sum := sha256.Sum256(raw)
			d.TrustedRoot = hex.EncodeToString(sum[:])
		default:
			fail(kpath, errors.New("one of roots and trustedRootFile is required"))
		}
	}
	d.TLog, d.CTLog = a.tlog, a.ctlog
	if len(errs) > 0 {
		return nil, d, errs
	}
	return a, d, nil
}

// checkIdentity insists on an issuer and a subject constraint, one form of each, with valid expressions.
func checkIdentity(id IdentityConfig) error {
	if id.Issuer != "" && id.IssuerRegExp != "" {
		return errors.New("set one of issuer and issuerRegExp, not both")
	}
	if id.Subject != "" && id.SubjectRegExp != "" {
		return errors.New("set one of subject and subjectRegExp, not both")
	}
	if id.Issuer == "" && id.IssuerRegExp == "" {
		return errors.New("an issuer (issuer or issuerRegExp) is required")
	}
	if id.Subject == "" && id.SubjectRegExp == "" {
		return errors.New("a subject (subject or subjectRegExp) is required")
	}
	for _, f := range []struct{ field, expr string }{{"issuerRegExp", id.IssuerRegExp}, {"subjectRegExp", id.SubjectRegExp}} {
		if f.expr == "" {
			continue
		}
		if _, err := regexp.Compile(f.expr); err != nil {
			return fmt.Errorf("%s: %w", f.field, err)
		}
	}
	return nil
}

// Match returns the first policy whose images cover ref, or nil.
func (t *TrustPolicies) Match(ref Reference) *TrustPolicy {
	if t == nil {
		return nil
	}
	for _, p := range t.policies {
		for _, g := range p.globs {
			if g.match(ref) {
				return p
			}
		}
	}
	return nil
}

// NoMatch is deny, audit or allow: what becomes of images no policy covers.
func (t *TrustPolicies) NoMatch() string {
	if t == nil {
		return NoMatchDeny
	}
	return t.noMatch
}

// Len is the number of policies.
func (t *TrustPolicies) Len() int {
	if t == nil {
		return 0
	}
	return len(t.policies)
}

// Hash identifies the whole configuration (every policy's hash and noMatch).
func (t *TrustPolicies) Hash() string {
	if t == nil {
		return ""
	}
	return t.hash
}

// Name is the policy's configured name.
func (p *TrustPolicy) Name() string { return p.name }

// Hash identifies the policy's configuration, including the content of its keys and roots.
func (p *TrustPolicy) Hash() string { return p.hash }

// RequiredAttestations are the predicate types the policy requires, in configured order.
func (p *TrustPolicy) RequiredAttestations() []string {
	out := make([]string, len(p.requirements))
	for i, r := range p.requirements {
		out[i] = r.predicateType
	}
	return out
}
