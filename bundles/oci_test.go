//go:build !lean

package bundles_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/bundles/bundlestest"
)

// testRegistry is go-containerregistry's in-memory registry on 127.0.0.1 that can be told to serve one blob's
// bytes tampered (same length, one byte changed) or to go down.
type testRegistry struct {
	server *httptest.Server
	tamper atomic.Value // string: the blob digest to tamper, "" for none
	down   atomic.Bool
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	r.tamper.Store("")
	inner := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		d := r.tamper.Load().(string)
		if d == "" || req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/blobs/"+d) {
			inner.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if len(body) > 20 {
			body[len(body)-20] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *testRegistry) host() string {
	u, _ := url.Parse(r.server.URL)
	return u.Host
}

func (r *testRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host() + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// verifierFor trusts bundles of the registry signed by key, under trust policy "policy-bundles".
func verifierFor(t *testing.T, r *testRegistry, key *attestationtest.Signer) *attestation.Verifier {
	t.Helper()
	tp, err := attestation.NewTrustPolicies(attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{
		Name:        "policy-bundles",
		Images:      []string{r.host() + "/policies/**"},
		Authorities: []attestation.AuthorityConfig{{Name: "policy-ci", Key: &attestation.KeyConfig{PEM: key.PublicKeyPEM(t)}}},
	}}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return attestation.NewVerifier(tp, attestation.VerifierOptions{Timeout: 5 * time.Second})
}

func archiveOf(t *testing.T, fs map[string]string) []byte {
	t.Helper()
	return bundlestest.ArchiveDir(t, bundlestest.WriteDir(t, fs))
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := newTestRegistry(t)
	ctx := context.Background()
	archive := archiveOf(t, files())
	d, err := bundles.Push(ctx, archive, reg.ref(t, "policies/acme:v1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, got, err := bundles.Pull(ctx, d, nil, bundles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, archive) || len(b.Files) != 3 {
		t.Errorf("pulled %d bytes, %d files", len(got), len(b.Files))
	}
	// Pushing the same bundle again gives the same digest: the artifact is deterministic too.
	d2, err := bundles.Push(ctx, archive, reg.ref(t, "policies/acme:v1-again"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2.DigestStr() != d.DigestStr() {
		t.Errorf("digests %s, %s", d.DigestStr(), d2.DigestStr())
	}
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t)
	key, other := attestationtest.NewKey(t), attestationtest.NewKey(t)
	v := verifierFor(t, reg, key)

	signed, err := bundles.Push(ctx, archiveOf(t, files()), reg.ref(t, "policies/acme:signed"), nil)
	if err != nil {
		t.Fatal(err)
	}
	key.Sign(t, signed)
	_, err = bundles.Push(ctx, archiveOf(t, files(with("acme/x.rego", bundlestest.TeamLabelPolicy))), reg.ref(t, "policies/acme:unsigned"), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := bundles.Push(ctx, archiveOf(t, files(with("acme/y.rego", bundlestest.TeamLabelPolicy))), reg.ref(t, "policies/acme:other"), nil)
	if err != nil {
		t.Fatal(err)
	}
	other.Sign(t, otherKey)
	uncovered, err := bundles.Push(ctx, archiveOf(t, files()), reg.ref(t, "elsewhere/acme:v1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	key.Sign(t, uncovered)

	got, err := bundles.Fetch(ctx, v, reg.host()+"/policies/acme:signed", "policy-bundles", nil, bundles.Limits{})
	if err != nil {
		t.Fatalf("signed bundle: %v", err)
	}
	if got.Digest != signed.DigestStr() || got.Signer != key.KeyID(t) || got.Authority != "policy-ci" || got.TrustPolicy != "policy-bundles" {
		t.Errorf("verified = %+v", got)
	}

	cases := []struct {
		name, ref, policy, want string
	}{
		{"unsigned", reg.host() + "/policies/acme:unsigned", "policy-bundles", "no signature"},
		{"other key", reg.host() + "/policies/acme:other", "policy-bundles", "signature by a different key"},
		{"uncovered", reg.host() + "/elsewhere/acme:v1", "", "no trust policy of the trust section covers it"},
		{"other trust policy", reg.host() + "/policies/acme:signed", "images", `covered by trust policy "policy-bundles", not "images"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundles.Fetch(ctx, v, tc.ref, tc.policy, nil, bundles.Limits{})
			t.Log(err)
			if !errors.Is(err, bundles.ErrUntrusted) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUntrusted saying %q", err, tc.want)
			}
		})
	}

	t.Run("tampered layer", func(t *testing.T) {
		b, _, err := bundles.Pull(ctx, signed, nil, bundles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := b.Archive()
		reg.tamper.Store(bundles.Digest(a))
		defer reg.tamper.Store("")
		_, err = bundles.Fetch(ctx, verifierFor(t, reg, key), reg.host()+"/policies/acme:signed", "policy-bundles", nil, bundles.Limits{})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "the bundle layer") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("registry down", func(t *testing.T) {
		reg.down.Store(true)
		defer reg.down.Store(false)
		_, err := bundles.Fetch(ctx, verifierFor(t, reg, key), reg.host()+"/policies/acme:signed", "policy-bundles", nil, bundles.Limits{})
		if !errors.Is(err, bundles.ErrUnavailable) || !strings.Contains(err.Error(), "could not verify") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPullRefusesAnImage(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	d := reg.PushRandomImage(t, "policies/app", "v1")
	_, _, err := bundles.Pull(context.Background(), d, nil, bundles.Limits{})
	if err == nil || !strings.Contains(err.Error(), "not a policy bundle: want one layer of media type application/vnd.oci.image.layer.v1.tar+gzip") {
		t.Fatalf("err = %v", err)
	}
}
