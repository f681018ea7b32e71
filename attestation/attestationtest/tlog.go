package attestationtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	cbundle "github.com/sigstore/cosign/v3/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Log stands in for a Rekor (v1) transparency log: it signs entry timestamps (SETs) with its own key, so a
// signature can carry offline proof of when it was logged. Only what verification checks is produced: the
// hashedrekord entry body, its integrated time and index, and the SET over them.
type Log struct {
	key *ecdsa.PrivateKey
	der []byte // PKIX public key
	id  []byte // log ID: SHA-256 of der
}

// NewLog creates a log key.
func NewLog(t testing.TB) *Log {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	return &Log{key: key, der: der, id: id[:]}
}

// SignLogged attaches a legacy keyless signature for d carrying a transparency-log bundle that says the log
// integrated it at the given time — how `cosign sign` (v2, or v3 with --new-bundle-format=false) records a
// Fulcio certificate's use, so the signature still verifies after the 10-minute certificate expires.
func (s *Signer) SignLogged(t testing.TB, d name.Digest, log *Log, integrated time.Time) {
	t.Helper()
	body, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.sv.SignMessage(bytesReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b64sig := base64.StdEncoding.EncodeToString(raw)
	sum := sha256.Sum256(body)
	entry, err := json.Marshal(map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{"content": b64sig, "publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(pemCert(s.cert))}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := cbundle.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(entry),
		IntegratedTime: integrated.Unix(),
		LogIndex:       42,
		LogID:          hex.EncodeToString(log.id),
	}
	set := log.sign(t, p)
	opts := append(s.staticOptions(t), static.WithBundle(&cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: p}))
	sig, err := static.NewSignature(body, b64sig, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.attach(t, d, sig)
}

// sign makes the SET: the log's signature over the canonical JSON of the payload (keys sorted, no spaces: what
// encoding/json writes for these fields).
func (l *Log) sign(t testing.TB, p cbundle.RekorPayload) []byte {
	t.Helper()
	canonical, err := json.Marshal(map[string]any{"body": p.Body, "integratedTime": p.IntegratedTime, "logID": p.LogID, "logIndex": p.LogIndex})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canonical)
	set, err := ecdsa.SignASN1(rand.Reader, l.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return set
}
