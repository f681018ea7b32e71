package attestation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/cryptoutils/goodkey"
	"github.com/sigstore/sigstore/pkg/signature"
)

// SecretReader reads one key of a Kubernetes Secret; cmd/attest passes one backed by the cluster client. Without
// one, a key given by secretRef is a configuration error.
type SecretReader interface {
	ReadSecret(ctx context.Context, namespace, name, key string) ([]byte, error)
}

// secretReadTimeout bounds each Secret read at configuration load.
const secretReadTimeout = 10 * time.Second

// loader reads the PEM material a configuration names.
type loader struct {
	baseDir string
	secrets SecretReader
}

func (l loader) readFile(p string) ([]byte, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.baseDir, p)
	}
	return os.ReadFile(p)
}

func (l loader) source(pemText, pemFile string) ([]byte, error) {
	switch {
	case pemText != "" && pemFile != "":
		return nil, errors.New("set one of pem and pemFile, not both")
	case pemText != "":
		return []byte(pemText), nil
	case pemFile != "":
		b, err := l.readFile(pemFile)
		if err != nil {
			return nil, fmt.Errorf("pemFile: %w", err)
		}
		return b, nil
	}
	return nil, errors.New("one of pem and pemFile is required")
}

// publicKey loads, parses and checks a key authority's public key.
func (l loader) publicKey(k *KeyConfig) (crypto.PublicKey, error) {
	n := 0
	for _, set := range []bool{k.PEM != "", k.PEMFile != "", k.SecretRef != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("set exactly one of pem, pemFile and secretRef")
	}
	var data []byte
	if k.SecretRef != nil {
		r := k.SecretRef
		if r.Namespace == "" || r.Name == "" || r.Key == "" {
			return nil, errors.New("secretRef: namespace, name and key are required")
		}
		if l.secrets == nil {
			return nil, fmt.Errorf("secretRef %s/%s needs a cluster: no Secret reader is configured (use pem or pemFile offline)", r.Namespace, r.Name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), secretReadTimeout)
		defer cancel()
		b, err := l.secrets.ReadSecret(ctx, r.Namespace, r.Name, r.Key)
		if err != nil {
			return nil, fmt.Errorf("secretRef %s/%s key %q: %w", r.Namespace, r.Name, r.Key, err)
		}
		data = b
	} else {
		b, err := l.source(k.PEM, k.PEMFile)
		if err != nil {
			return nil, err
		}
		data = b
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("not a PEM public key: %w", err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported public key type %T (want ECDSA, RSA or Ed25519)", pub)
	}
	if err := goodkey.ValidatePubKey(pub); err != nil {
		return nil, fmt.Errorf("public key rejected: %w", err)
	}
	return pub, nil
}

// keyID is "sha256:<hex>" of the key's DER (PKIX) encoding: the signer fact of key signatures.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// keyVerifier is the signature.Verifier cosign checks key signatures with (SHA-256, as cosign's own key loading).
func keyVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	return signature.LoadVerifier(pub, crypto.SHA256)
}

// caMaterial splits a PEM bundle into self-signed roots and intermediates and builds the trusted material
// sigstore-go and cosign verify certificate chains against: one certificate authority per root, each offered
// every intermediate.
func caMaterial(data []byte) (root.TrustedMaterial, [][]byte, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("not PEM certificates: %w", err)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificates found")
	}
	var roots, intermediates []*x509.Certificate
	var ders [][]byte
	for _, c := range certs {
		if !c.IsCA {
			return nil, nil, fmt.Errorf("certificate %q is not a CA certificate", c.Subject.String())
		}
		ders = append(ders, c.Raw)
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	if len(roots) == 0 {
		return nil, nil, errors.New("no self-signed root certificate; include the root CA, not only intermediates")
	}
	cas := make([]root.CertificateAuthority, 0, len(roots))
	for _, r := range roots {
		cas = append(cas, &root.FulcioCertificateAuthority{Root: r, Intermediates: intermediates})
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return tr, ders, nil
}
