//go:build !lean

package attestation

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/cosign/v3/pkg/oci"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"github.com/sigstore/cosign/v3/pkg/types"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// finding is one signature or attestation found for the image, and what each authority made of it.
type finding struct {
	signature     bool   // a signature over the image: legacy simple signing, or a bundle with cosign's sign predicate
	predicateType string // attestations
	predicate     any

	accepted  *authority // the first authority that verified it, nil if none did
	signer    string
	rejection []string // one reason per authority that rejected it

	policyRun  bool // the predicate check ran (attestations accepted by an authority)
	policyDeny []string
}

// errWrongImage marks a claim check failure: the signature is valid but was made for another digest (a signature
// copied from image A to image B's signature tag).
var errWrongImage = errors.New("signature made for a different image")

// simpleClaims and intotoClaims are the claim verifiers cosign must always be given (it does not default one:
// without it, a signature copied from another image verifies).
func simpleClaims(sig oci.Signature, h v1.Hash, ann map[string]any) error {
	if err := cosign.SimpleClaimVerifier(sig, h, ann); err != nil {
		return fmt.Errorf("%w: %w", errWrongImage, err)
	}
	return nil
}

func intotoClaims(sig oci.Signature, h v1.Hash, ann map[string]any) error {
	if err := cosign.IntotoSubjectClaimVerifier(sig, h, ann); err != nil {
		return fmt.Errorf("%w: %w", errWrongImage, err)
	}
	return nil
}

// checkOpts is the cosign configuration for one authority: trust material from configuration only (no TUF, no
// Rekor or CT lookups: Offline), the claim verifier always set, and keyless always bound to identities.
func (a *authority) checkOpts(claims func(oci.Signature, v1.Hash, map[string]any) error, identities []IdentityConfig) *cosign.CheckOpts {
	co := &cosign.CheckOpts{
		ClaimVerifier:       claims,
		IgnoreTlog:          !a.tlog,
		IgnoreSCT:           !a.ctlog,
		Offline:             true,
		UseSignedTimestamps: a.signedTimes,
		MaxWorkers:          1,
	}
	if a.key != nil {
		co.SigVerifier = a.key
	} else {
		co.TrustedMaterial = a.material
		co.Identities = cosignIdentities(identities)
	}
	return co
}

// errNoIdentity guards the keyless pitfall in depth: configuration loading already refuses it.
// cosignIdentities are the identities in cosign's type.
func cosignIdentities(ids []IdentityConfig) []cosign.Identity {
	if ids == nil {
		return nil
	}
	out := make([]cosign.Identity, len(ids))
	for i, id := range ids {
		out[i] = cosign.Identity{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp}
	}
	return out
}

var errNoIdentity = errors.New("keyless authority without identities accepts nothing")

// verifyLegacySignature checks one `.sig` layer with cosign.
func (a *authority) verifyLegacySignature(ctx context.Context, sig oci.Signature, h v1.Hash) (string, error) {
	if a.key == nil && len(a.identities) == 0 {
		return "", errNoIdentity
	}
	if _, err := cosign.VerifyImageSignature(ctx, sig, h, a.checkOpts(simpleClaims, a.identities)); err != nil {
		return "", err
	}
	return a.signerOf(sig.Cert())
}

// verifyLegacyAttestation checks one `.att` layer (a DSSE envelope) with cosign.
func (a *authority) verifyLegacyAttestation(ctx context.Context, att oci.Signature, h v1.Hash) (string, error) {
	if a.key == nil && len(a.identities) == 0 {
		return "", errNoIdentity
	}
	if _, err := cosign.VerifyBlobAttestation(ctx, att, h, a.checkOpts(intotoClaims, a.identities)); err != nil {
		return "", err
	}
	return a.signerOf(att.Cert())
}

// verifyBundle checks one sigstore bundle (DSSE) with cosign's sigstore-go path, for the image digest, then the
// in-toto subject claim. sigstore-go takes one identity at a time, so each is tried in turn.
func (a *authority) verifyBundle(ctx context.Context, b *sgbundle.Bundle, envelope oci.Signature, h v1.Hash) (string, error) {
	digest, err := hex.DecodeString(h.Hex)
	if err != nil {
		return "", err
	}
	policy := verify.WithArtifactDigest(h.Algorithm, digest)
	if a.key != nil {
		if _, err := cosign.VerifyNewBundle(ctx, a.checkOpts(intotoClaims, nil), policy, b); err != nil {
			return "", err
		}
		if err := intotoClaims(envelope, h, nil); err != nil {
			return "", err
		}
		return a.keyID, nil
	}
	if len(a.identities) == 0 {
		return "", errNoIdentity
	}
	var errs []error
	for _, id := range a.identities {
		res, err := cosign.VerifyNewBundle(ctx, a.checkOpts(intotoClaims, []IdentityConfig{id}), policy, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := intotoClaims(envelope, h, nil); err != nil {
			return "", err
		}
		if res.Signature != nil && res.Signature.Certificate != nil {
			return summarySigner(*res.Signature.Certificate), nil
		}
		vc, err := b.VerificationContent()
		if err != nil {
			return "", err
		}
		return a.signerOf(vc.Certificate(), nil)
	}
	return "", errors.Join(errs...)
}

// signerOf names who signed: the key id for key authorities, "<subject> (<issuer>)" for certificates.
func (a *authority) signerOf(cert *x509.Certificate, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if a.key != nil {
		return a.keyID, nil
	}
	if cert == nil {
		return "", errors.New("no certificate on a keyless signature")
	}
	return certSigner(cert), nil
}

func certSigner(cert *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return cert.Subject.String()
	}
	return summarySigner(s)
}

func summarySigner(s certificate.Summary) string {
	return fmt.Sprintf("%s (%s)", s.SubjectAlternativeName, s.Issuer)
}

// rejection explains, for a person, why authority a did not accept a signature carrying cert (nil for key
// signatures). cosign's error decides acceptance; this only chooses the words.
func (a *authority) rejection(cert *x509.Certificate, wrongImage bool, err error) string {
	switch {
	case errors.Is(err, errWrongImage) || wrongImage:
		return "signature made for a different image"
	case a.key != nil:
		return "signature by a different key"
	case errors.Is(err, errNoIdentity):
		return err.Error()
	case cert == nil:
		return "signature made with a key, not a certificate"
	}
	if _, cerr := verify.VerifyLeafCertificate(cert.NotBefore, cert, a.material); cerr != nil {
		return fmt.Sprintf("certificate of %s not issued by the CA of authority '%s'", certSigner(cert), a.name)
	}
	if !a.identityMatches(cert) {
		return fmt.Sprintf("signature by %s, an identity authority '%s' does not trust", certSigner(cert), a.name)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "offline verification failed") || strings.Contains(msg, "transparency log"):
		return fmt.Sprintf("signature by %s has no transparency-log proof", certSigner(cert))
	case strings.Contains(msg, "error verifying bundle"):
		return fmt.Sprintf("signature by %s carries a transparency-log entry no trusted log vouches for", certSigner(cert))
	case strings.Contains(msg, "SCT") || strings.Contains(msg, "certificate timestamp"):
		return fmt.Sprintf("certificate of %s has no valid certificate-transparency timestamp", certSigner(cert))
	case strings.Contains(msg, "expir"):
		return fmt.Sprintf("certificate of %s has expired and no log entry or timestamp proves it was valid when used", certSigner(cert))
	}
	return fmt.Sprintf("signature by %s did not verify: %v", certSigner(cert), err)
}

// identityMatches mirrors cosign's identity check, for messages only.
func (a *authority) identityMatches(cert *x509.Certificate) bool {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return false
	}
	match := func(exact, expr, v string) bool {
		if expr != "" {
			re, err := regexp.Compile(expr)
			return err == nil && re.MatchString(v)
		}
		return exact == v
	}
	for _, id := range a.identities {
		if match(id.Issuer, id.IssuerRegExp, s.Issuer) && match(id.Subject, id.SubjectRegExp, s.SubjectAlternativeName) {
			return true
		}
	}
	return false
}

// statement is the part of an in-toto statement verification reads.
type statement struct {
	PredicateType string `json:"predicateType"`
	Predicate     any    `json:"predicate"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

func (s statement) covers(h v1.Hash) bool {
	for _, sub := range s.Subject {
		if sub.Digest[h.Algorithm] == h.Hex {
			return true
		}
	}
	return false
}

// envelopeStatement decodes the statement a DSSE envelope carries, unverified (to classify what was found).
func envelopeStatement(envelopeJSON []byte) (statement, error) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	if err := json.Unmarshal(envelopeJSON, &env); err != nil {
		return statement{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return statement{}, err
	}
	var st statement
	err = json.Unmarshal(raw, &st)
	return st, err
}

// examineBundle verifies one bundle against each authority in turn.
func examineBundle(ctx context.Context, b *sgbundle.Bundle, h v1.Hash, authorities []*authority) *finding {
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil // a message-signature bundle signs a blob, not an image manifest: not ours to judge
	}
	var st statement
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return nil
	}
	f := &finding{signature: st.PredicateType == types.CosignSignPredicateType, predicateType: st.PredicateType, predicate: st.Predicate}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return nil
	}
	envelope, err := static.NewAttestation(envJSON)
	if err != nil {
		return nil
	}
	var cert *x509.Certificate
	if vc, err := b.VerificationContent(); err == nil {
		cert = vc.Certificate()
	}
	for _, a := range authorities {
		signer, err := a.verifyBundle(ctx, b, envelope, h)
		if err == nil {
			f.accepted, f.signer = a, signer
			break
		}
		f.rejection = append(f.rejection, a.rejectionFor(authorities, cert, !st.covers(h), err))
	}
	return f
}

// examineLegacySignature verifies one `.sig` layer against each authority in turn.
func examineLegacySignature(ctx context.Context, sig oci.Signature, h v1.Hash, authorities []*authority) *finding {
	f := &finding{signature: true}
	cert, _ := sig.Cert()
	for _, a := range authorities {
		signer, err := a.verifyLegacySignature(ctx, sig, h)
		if err == nil {
			f.accepted, f.signer = a, signer
			break
		}
		f.rejection = append(f.rejection, a.rejectionFor(authorities, cert, false, err))
	}
	return f
}

// examineLegacyAttestation verifies one `.att` layer against each authority in turn.
func examineLegacyAttestation(ctx context.Context, att oci.Signature, h v1.Hash, authorities []*authority) *finding {
	payload, err := att.Payload()
	if err != nil {
		return nil
	}
	st, err := envelopeStatement(payload)
	if err != nil {
		return nil
	}
	f := &finding{predicateType: st.PredicateType, predicate: st.Predicate}
	cert, _ := att.Cert()
	for _, a := range authorities {
		signer, err := a.verifyLegacyAttestation(ctx, att, h)
		if err == nil {
			f.accepted, f.signer = a, signer
			break
		}
		f.rejection = append(f.rejection, a.rejectionFor(authorities, cert, !st.covers(h), err))
	}
	return f
}

// rejectionFor prefixes the reason with the authority's name when the policy has several.
func (a *authority) rejectionFor(all []*authority, cert *x509.Certificate, wrongImage bool, err error) string {
	r := a.rejection(cert, wrongImage, err)
	if len(all) > 1 {
		return fmt.Sprintf("authority '%s': %s", a.name, r)
	}
	return r
}

// authorityNames lists names for messages: 'a', 'a' or 'b', 'a', 'b' or 'c'.
func authorityNames(as []*authority) string {
	q := make([]string, len(as))
	for i, a := range as {
		q[i] = "'" + a.name + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// foundSummary condenses rejections: "found 2 signatures: signature by a different key".
func foundSummary(n int, noun string, fs []*finding) string {
	seen := map[string]bool{}
	var reasons []string
	for _, f := range fs {
		for _, r := range f.rejection {
			if !seen[r] {
				seen[r] = true
				reasons = append(reasons, r)
			}
		}
	}
	sort.Strings(reasons)
	if n != 1 {
		noun += "s"
	}
	return fmt.Sprintf("found %d %s: %s", n, noun, strings.Join(reasons, "; "))
}
