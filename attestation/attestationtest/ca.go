package attestationtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Signer signs payloads: with a bare key (Key) or with a key certified by a CA (Keyless).
type Signer struct {
	priv *ecdsa.PrivateKey
	sv   signature.SignerVerifier
	// cert and chain are set for keyless signers: the leaf, and intermediate(s) then root.
	cert  *x509.Certificate
	chain []*x509.Certificate
}

// NewKey generates an ECDSA P-256 key.
func NewKey(t testing.TB) *Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{priv: priv, sv: sv}
}

// PublicKeyPEM is the signer's public key, as a key authority's pem.
func (s *Signer) PublicKeyPEM(t testing.TB) string {
	t.Helper()
	b, err := cryptoutils.MarshalPublicKeyToPEM(s.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// KeyID is "sha256:<hex>" of the public key's DER encoding: the signer fact of its signatures.
func (s *Signer) KeyID(t testing.TB) string {
	t.Helper()
	der, err := cryptoutils.MarshalPublicKeyToDER(s.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + strings.ToLower(hexString(sum[:]))
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return string(out)
}

// Certificate is the keyless signer's leaf certificate (nil for keys).
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// CA is a test certificate authority shaped like a private Fulcio: a root, an intermediate, and short-lived leaf
// certificates carrying the OIDC issuer in Fulcio's extensions (1.3.6.1.4.1.57264.1.1, which cosign's legacy path
// reads, and 1.3.6.1.4.1.57264.1.8) and the subject as a SAN (URI or email).
type CA struct {
	root, intermediate       *x509.Certificate
	rootKey, intermediateKey *ecdsa.PrivateKey
}

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// NewCA creates a root and an intermediate valid from a day ago for two days.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca := &CA{}
	var err error
	if ca.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if ca.intermediateKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " root", Organization: []string{"attest tests"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca.root = mustCert(t, rootTmpl, rootTmpl, &ca.rootKey.PublicKey, ca.rootKey)
	interTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: name + " intermediate", Organization: []string{"attest tests"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	ca.intermediate = mustCert(t, interTmpl, ca.root, &ca.intermediateKey.PublicKey, ca.rootKey)
	return ca
}

// RootsPEM is the root and the intermediate, PEM: a keyless authority's roots.
func (ca *CA) RootsPEM(t testing.TB) string {
	t.Helper()
	b, err := cryptoutils.MarshalCertificatesToPEM([]*x509.Certificate{ca.root, ca.intermediate})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RootOnlyPEM is the root alone, PEM.
func (ca *CA) RootOnlyPEM(t testing.TB) string {
	t.Helper()
	b, err := cryptoutils.MarshalCertificateToPEM(ca.root)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Root and Intermediate are the CA certificates.
func (ca *CA) Root() *x509.Certificate         { return ca.root }
func (ca *CA) Intermediate() *x509.Certificate { return ca.intermediate }

// Keyless issues a fresh key a 10-minute leaf certificate for subject (a URI, or an email address) from OIDC
// issuer, the way Fulcio certifies a CI job.
func (ca *CA) Keyless(t testing.TB, issuer, subject string) *Signer {
	t.Helper()
	return ca.KeylessAt(t, issuer, subject, time.Now().Add(-time.Minute), time.Now().Add(10*time.Minute))
}

// KeylessAt is Keyless with a certificate valid from notBefore to notAfter (in the past, for an expired one).
func (ca *CA) KeylessAt(t testing.TB, issuer, subject string, notBefore, notAfter time.Time) *Signer {
	t.Helper()
	s := NewKey(t)
	s.cert = ca.Leaf(t, s.priv.Public(), issuer, subject, notBefore, notAfter)
	s.chain = []*x509.Certificate{ca.intermediate, ca.root}
	return s
}

// Leaf issues a code-signing certificate for pub.
func (ca *CA) Leaf(t testing.TB, pub crypto.PublicKey, issuer, subject string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	issuerDER, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: issuerDER},
		},
	}
	if strings.Contains(subject, "://") {
		u, err := url.Parse(subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	return mustCert(t, tmpl, ca.intermediate, pub, ca.intermediateKey)
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TrustedRootJSON is a sigstore trusted_root.json naming this CA and the given transparency logs (no CT log, no
// timestamp authority): what a keyless authority's trustedRootFile holds for a private deployment.
func (ca *CA) TrustedRootJSON(t testing.TB, logs ...*Log) []byte {
	t.Helper()
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	type validFor struct {
		Start string `json:"start"`
	}
	var tlogs []any
	for _, l := range logs {
		tlogs = append(tlogs, map[string]any{
			"baseUrl":       "https://rekor.test",
			"hashAlgorithm": "SHA2_256",
			"publicKey":     map[string]any{"rawBytes": enc(l.der), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": validFor{ca.root.NotBefore.UTC().Format(time.RFC3339)}},
			"logId":         map[string]any{"keyId": enc(l.id)},
		})
	}
	doc := map[string]any{
		"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
		"certificateAuthorities": []any{map[string]any{
			"subject":   map[string]any{"organization": "attest tests", "commonName": "test"},
			"uri":       "https://fulcio.test",
			"certChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": enc(ca.intermediate.Raw)}, map[string]any{"rawBytes": enc(ca.root.Raw)}}},
			"validFor":  validFor{ca.root.NotBefore.UTC().Format(time.RFC3339)},
		}},
		"tlogs":                tlogs,
		"ctlogs":               []any{},
		"timestampAuthorities": []any{},
	}
	if tlogs == nil {
		doc["tlogs"] = []any{}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
