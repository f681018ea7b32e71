package attestationtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v3/pkg/oci"
	"github.com/sigstore/cosign/v3/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"github.com/sigstore/cosign/v3/pkg/types"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"google.golang.org/protobuf/encoding/protojson"
)

// Sign attaches a legacy cosign signature (simple signing payload, sha256-<hex>.sig tag) for d, as
// `cosign sign --new-bundle-format=false` writes it; keyless signers add their certificate and chain.
func (s *Signer) Sign(t testing.TB, d name.Digest) {
	t.Helper()
	body, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := static.NewSignature(body, base64.StdEncoding.EncodeToString(raw), s.staticOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	s.attach(t, d, sig)
}

func (s *Signer) attach(t testing.TB, d name.Digest, sig oci.Signature) {
	t.Helper()
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d), sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se); err != nil {
		t.Fatal(err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Attest attaches a legacy cosign attestation (a DSSE envelope around an in-toto statement for d, on the
// sha256-<hex>.att tag), as `cosign attest --new-bundle-format=false` writes it.
func (s *Signer) Attest(t testing.TB, d name.Digest, predicateType string, predicate any) {
	t.Helper()
	env, err := dsse.WrapSigner(s.sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(Statement(t, d, predicateType, predicate)))
	if err != nil {
		t.Fatal(err)
	}
	opts := append(s.staticOptions(t), static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}))
	att, err := static.NewAttestation(env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(d), att)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestations(d.Repository, se); err != nil {
		t.Fatal(err)
	}
}

func (s *Signer) staticOptions(t testing.TB) []static.Option {
	t.Helper()
	if s.cert == nil {
		return nil
	}
	chain, err := cryptoutils.MarshalCertificatesToPEM(s.chain)
	if err != nil {
		t.Fatal(err)
	}
	return []static.Option{static.WithCertChain(pemCert(s.cert), chain)}
}

// Statement is the in-toto v1 statement about d.
func Statement(t testing.TB, d name.Digest, predicateType string, predicate any) []byte {
	t.Helper()
	h := d.DigestStr()
	b, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": d.Repository.Name(), "digest": map[string]any{"sha256": h[len("sha256:"):]}}},
		"predicateType": predicateType,
		"predicate":     predicate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SignBundle attaches a signature the way cosign v3 writes it by default: a sigstore bundle (v0.3, DSSE around an
// in-toto statement with cosign's sign predicate) stored as an OCI 1.1 referrer of d.
func (s *Signer) SignBundle(t testing.TB, d name.Digest) {
	t.Helper()
	s.AttestBundle(t, d, types.CosignSignPredicateType, map[string]any{})
}

// AttestBundle attaches an attestation as a sigstore bundle referrer of d, as `cosign attest` v3 does.
func (s *Signer) AttestBundle(t testing.TB, d name.Digest, predicateType string, predicate any) {
	t.Helper()
	s.writeBundle(t, d, predicateType, Statement(t, d, predicateType, predicate))
}

// BundleFor writes a bundle signed over stmt (which may name another digest) as a referrer of d.
func (s *Signer) writeBundle(t testing.TB, d name.Digest, predicateType string, stmt []byte) {
	t.Helper()
	opts := sign.BundleOptions{Context: context.Background()}
	if s.cert != nil {
		opts.CertificateProvider = staticCert{der: s.cert.Raw}
	}
	b, err := sign.Bundle(&sign.DSSEData{Data: stmt, PayloadType: types.IntotoPayloadType}, keypair{s}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(d, raw, predicateType); err != nil {
		t.Fatal(err)
	}
}

// BundleOverStatement writes, as a referrer of d, a bundle whose statement is stmt: for tests of bundles made for
// another image.
func (s *Signer) BundleOverStatement(t testing.TB, d name.Digest, predicateType string, stmt []byte) {
	t.Helper()
	s.writeBundle(t, d, predicateType, stmt)
}

// CopySignatures copies the legacy signature tag of from onto the signature tag of to (same repository or not):
// a valid signature made for another image.
func CopySignatures(t testing.TB, from, to name.Digest) {
	t.Helper()
	src, err := ociremote.SignatureTag(from)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ociremote.SignatureTag(to)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
}

// keypair adapts a Signer to sigstore-go's signing interface.
type keypair struct{ s *Signer }

func (k keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}
func (k keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}
func (k keypair) GetHint() []byte {
	der, _ := cryptoutils.MarshalPublicKeyToDER(k.s.priv.Public())
	sum := sha256.Sum256(der)
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}
func (k keypair) GetKeyAlgorithm() string        { return "ECDSA" }
func (k keypair) GetPublicKey() crypto.PublicKey { return k.s.priv.Public() }
func (k keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.s.priv.Public())
	return string(b), err
}
func (k keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.s.priv, sum[:])
	return sig, sum[:], err
}

// staticCert hands sigstore-go the signer's certificate, as Fulcio would.
type staticCert struct{ der []byte }

func (c staticCert) GetCertificate(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([]byte, error) {
	return c.der, nil
}
