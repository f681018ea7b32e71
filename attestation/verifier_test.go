package attestation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

const (
	slsa       = "https://slsa.dev/provenance/v1"
	spdx       = "https://spdx.dev/Document"
	ghIssuer   = "https://token.actions.githubusercontent.com"
	goodSubj   = "https://github.com/company/app/.github/workflows/release.yml@refs/heads/main"
	evilSubj   = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main"
	builderOK  = "https://github.com/company/builder"
	builderBad = "https://github.com/evil/builder"
)

var provenance = map[string]any{"builder": map[string]any{"id": builderOK}, "buildType": "https://example.com/build/v1"}

// format signs and attests in one of cosign's two formats.
type format struct {
	name   string
	sign   func(s *attestationtest.Signer, t testing.TB, d name.Digest)
	attest func(s *attestationtest.Signer, t testing.TB, d name.Digest, predicateType string, predicate any)
}

var formats = []format{
	{"legacy", (*attestationtest.Signer).Sign, (*attestationtest.Signer).Attest},
	{"bundle", (*attestationtest.Signer).SignBundle, (*attestationtest.Signer).AttestBundle},
}

// keyPolicy trusts key for every image of reg and requires the given attestations.
func keyPolicy(t testing.TB, reg *attestationtest.Registry, key *attestationtest.Signer, atts ...attestation.AttestationConfig) attestation.TrustConfig {
	return attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{
		Name:         "release",
		Images:       []string{reg.Host() + "/**"},
		Authorities:  []attestation.AuthorityConfig{{Name: "release-key", Key: &attestation.KeyConfig{PEM: key.PublicKeyPEM(t)}}},
		Attestations: atts,
	}}}
}

func keylessPolicy(t testing.TB, reg *attestationtest.Registry, ca *attestationtest.CA, atts ...attestation.AttestationConfig) attestation.TrustConfig {
	return attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{
		Name:   "release",
		Images: []string{reg.Host() + "/**"},
		Authorities: []attestation.AuthorityConfig{{Name: "ci", Keyless: &attestation.KeylessConfig{
			Roots:      &attestation.PEMSource{PEM: ca.RootsPEM(t)},
			Identities: []attestation.IdentityConfig{{Issuer: ghIssuer, SubjectRegExp: "^https://github.com/company/.*"}},
		}}},
		Attestations: atts,
	}}}
}

func newVerifier(t testing.TB, cfg attestation.TrustConfig, o attestation.VerifierOptions) *attestation.Verifier {
	t.Helper()
	tp, err := attestation.NewTrustPolicies(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return attestation.NewVerifier(tp, o)
}

func requireSLSA() attestation.AttestationConfig {
	return attestation.AttestationConfig{PredicateType: slsa}
}

func TestVerifyKeySigned(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			reg := attestationtest.NewRegistry(t)
			key := attestationtest.NewKey(t)
			d := reg.PushRandomImage(t, "team/app", "v1")
			f.sign(key, t, d)
			f.attest(key, t, d, slsa, provenance)
			v := newVerifier(t, keyPolicy(t, reg, key, requireSLSA()), attestation.VerifierOptions{})

			got := v.Verify(context.Background(), reg.Tagged("team/app", "v1"), nil)
			want := attestation.Facts{
				Digest: d.DigestStr(),
				Trust:  attestation.TrustFacts{Policy: "release", NoMatch: "deny", Configured: true, Checked: true, RequiredAttestations: []string{slsa}},
				Signature: attestation.SignatureFacts{
					Verified: true, Signer: key.KeyID(t), Authority: "release-key",
				},
				Attestations: []attestation.AttestationFacts{{PredicateType: slsa, Verified: true, Signer: key.KeyID(t), Predicate: jsonRoundTrip(t, provenance)}},
			}
			got.VerifiedAt = time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("facts:\n got %s\nwant %s", dump(got), dump(want))
			}
			if !got.Passed() {
				t.Fatal("Passed() = false")
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			reg := attestationtest.NewRegistry(t)
			key := attestationtest.NewKey(t)
			other := attestationtest.NewKey(t)
			predicateCheck := attestation.AttestationConfig{PredicateType: slsa, Policy: `package predicate
import rego.v1
deny contains sprintf("unexpected builder %s", [input.predicate.builder.id]) if input.predicate.builder.id != "` + builderOK + `"
`}
			cases := []struct {
				name      string
				prepare   func(d name.Digest)
				signature string // "" means verified
				att       string // "" means verified
			}{
				{name: "unsigned", prepare: func(name.Digest) {},
					signature: "no signature from authority 'release-key'", att: "attestation https://slsa.dev/provenance/v1 missing"},
				{name: "signed by another key", prepare: func(d name.Digest) { f.sign(other, t, d); f.attest(other, t, d, slsa, provenance) },
					signature: "no signature from authority 'release-key' (found 1 signature: signature by a different key)",
					att:       "attestation https://slsa.dev/provenance/v1 not from authority 'release-key' (found 1 attestation: signature by a different key)"},
				{name: "attestation missing", prepare: func(d name.Digest) { f.sign(key, t, d) },
					att: "attestation https://slsa.dev/provenance/v1 missing"},
				{name: "wrong predicate type", prepare: func(d name.Digest) { f.sign(key, t, d); f.attest(key, t, d, spdx, map[string]any{}) },
					att: "attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)"},
				{name: "predicate check fails", prepare: func(d name.Digest) {
					f.sign(key, t, d)
					f.attest(key, t, d, slsa, map[string]any{"builder": map[string]any{"id": builderBad}})
				}, att: "attestation https://slsa.dev/provenance/v1 fails its policy: unexpected builder " + builderBad},
				{name: "signed and attested", prepare: func(d name.Digest) { f.sign(key, t, d); f.attest(key, t, d, slsa, provenance) }},
			}
			v := newVerifier(t, keyPolicy(t, reg, key, predicateCheck), attestation.VerifierOptions{})
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					d := reg.PushRandomImage(t, fmt.Sprintf("app%d", i), "v1")
					tc.prepare(d)
					got := v.Verify(context.Background(), d.String(), nil)
					if !got.Trust.Checked || got.Digest != d.DigestStr() {
						t.Fatalf("not checked: %s", dump(got))
					}
					if got.Signature.Error != tc.signature || got.Signature.Verified != (tc.signature == "") {
						t.Errorf("signature = %+v, want error %q", got.Signature, tc.signature)
					}
					if got.Attestations[0].Error != tc.att || got.Attestations[0].Verified != (tc.att == "") {
						t.Errorf("attestation = %+v, want error %q", got.Attestations[0], tc.att)
					}
					wantErr := strings.Trim(tc.signature+"; "+tc.att, "; ")
					if got.Trust.Error != wantErr || got.Passed() != (wantErr == "") {
						t.Errorf("trust.error = %q, want %q", got.Trust.Error, wantErr)
					}
				})
			}
		})
	}
}

func TestVerifyKeyless(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			reg := attestationtest.NewRegistry(t)
			ca := attestationtest.NewCA(t, "fulcio")
			otherCA := attestationtest.NewCA(t, "rogue")
			v := newVerifier(t, keylessPolicy(t, reg, ca, requireSLSA()), attestation.VerifierOptions{})
			cases := []struct {
				name    string
				signer  *attestationtest.Signer
				wantErr string
			}{
				{"allowed identity", ca.Keyless(t, ghIssuer, goodSubj), ""},
				{"other subject", ca.Keyless(t, ghIssuer, evilSubj),
					"no signature from authority 'ci' (found 1 signature: signature by " + evilSubj + " (" + ghIssuer + "), an identity authority 'ci' does not trust)"},
				{"other issuer", ca.Keyless(t, "https://accounts.example.com", goodSubj),
					"no signature from authority 'ci' (found 1 signature: signature by " + goodSubj + " (https://accounts.example.com), an identity authority 'ci' does not trust)"},
				{"other CA", otherCA.Keyless(t, ghIssuer, goodSubj),
					"no signature from authority 'ci' (found 1 signature: certificate of " + goodSubj + " (" + ghIssuer + ") not issued by the CA of authority 'ci')"},
				{"key, no certificate", attestationtest.NewKey(t),
					"no signature from authority 'ci' (found 1 signature: signature made with a key, not a certificate)"},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					d := reg.PushRandomImage(t, fmt.Sprintf("app%d", i), "v1")
					f.sign(tc.signer, t, d)
					f.attest(tc.signer, t, d, slsa, provenance)
					got := v.Verify(context.Background(), d.String(), nil)
					if got.Signature.Error != tc.wantErr {
						t.Fatalf("signature error:\n got %q\nwant %q", got.Signature.Error, tc.wantErr)
					}
					if tc.wantErr == "" {
						want := goodSubj + " (" + ghIssuer + ")"
						if !got.Passed() || got.Signature.Signer != want || got.Signature.Authority != "ci" || got.Attestations[0].Signer != want {
							t.Fatalf("not passed: %s", dump(got))
						}
					}
				})
			}
		})
	}
}

// TestKeylessTrustedRootFile verifies keyless signatures against a sigstore trusted_root.json naming the test CA
// (no logs: tlog and ctlog off).
func TestKeylessTrustedRootFile(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	ca := attestationtest.NewCA(t, "fulcio")
	dir := t.TempDir()
	writeFile(t, dir, "trusted_root.json", string(ca.TrustedRootJSON(t)))
	off := false
	cfg := attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{
		Name: "release", Images: []string{reg.Host() + "/**"},
		Authorities: []attestation.AuthorityConfig{{Name: "ci", TLog: &off, CTLog: &off, Keyless: &attestation.KeylessConfig{
			TrustedRootFile: "trusted_root.json",
			Identities:      []attestation.IdentityConfig{{Issuer: ghIssuer, Subject: goodSubj}},
		}}},
	}}}
	tp, err := attestation.NewTrustPolicies(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	v := attestation.NewVerifier(tp, attestation.VerifierOptions{})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			d := reg.PushRandomImage(t, "app-"+f.name, "v1")
			f.sign(ca.Keyless(t, ghIssuer, goodSubj), t, d)
			if got := v.Verify(context.Background(), d.String(), nil); !got.Passed() {
				t.Fatalf("not passed: %s", dump(got))
			}
			d2 := reg.PushRandomImage(t, "evil-"+f.name, "v1")
			f.sign(ca.Keyless(t, ghIssuer, evilSubj), t, d2)
			if got := v.Verify(context.Background(), d2.String(), nil); got.Passed() {
				t.Fatalf("other identity passed: %s", dump(got))
			}
		})
	}
}

// TestCopiedSignatureRejected pins cosign's ClaimVerifier pitfall: a valid signature by the trusted key, made for
// image A and copied onto image B, must not verify B.
func TestCopiedSignatureRejected(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{})

	t.Run("legacy tag", func(t *testing.T) {
		a := reg.PushRandomImage(t, "team/a", "v1")
		b := reg.PushRandomImage(t, "team/b", "v1")
		key.Sign(t, a)
		attestationtest.CopySignatures(t, a, b)
		if got := v.Verify(context.Background(), a.String(), nil); !got.Passed() {
			t.Fatalf("image A: %s", dump(got))
		}
		got := v.Verify(context.Background(), b.String(), nil)
		want := "no signature from authority 'release-key' (found 1 signature: signature made for a different image)"
		if got.Passed() || got.Signature.Error != want {
			t.Fatalf("image B: signature error %q, want %q", got.Signature.Error, want)
		}
	})
	t.Run("bundle referrer", func(t *testing.T) {
		a := reg.PushRandomImage(t, "team/c", "v1")
		b := reg.PushRandomImage(t, "team/d", "v1")
		key.BundleOverStatement(t, b, "https://sigstore.dev/cosign/sign/v1", attestationtest.Statement(t, a, "https://sigstore.dev/cosign/sign/v1", map[string]any{}))
		got := v.Verify(context.Background(), b.String(), nil)
		want := "no signature from authority 'release-key' (found 1 signature: signature made for a different image)"
		if got.Passed() || got.Signature.Error != want {
			t.Fatalf("image B: signature error %q, want %q", got.Signature.Error, want)
		}
	})
}

func TestHostileReferences(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	cfg := keyPolicy(t, reg, key)
	cfg.Policies[0].Images = append(cfg.Policies[0].Images, "gcr.io/company/**")
	v := newVerifier(t, cfg, attestation.VerifierOptions{})
	cases := map[string]string{
		"":                                       "image reference is empty",
		"gcr.io/company/app@sha256:short":        `image "gcr.io/company/app@sha256:short" is not a valid reference: the digest "sha256:short" is not valid: write it as sha256: and 64 lower-case hexadecimal digits`,
		"gcr.io/company/app@sha256:" + upper64(): "is not a valid reference: the digest \"sha256:AB",
		reg.Host() + "/app@sha256:" + upper64():  "is not valid (invalid checksum digest format)",
		"gcr.io/company//app":                    "empty path segment",
		"gcr.io/company/App":                     "is not a valid reference",
		"gcr.io/company/../evil/app:1":           `the path segment ".." is not allowed`,
		reg.Host() + "/team/../app":              `the path segment ".." is not allowed`,
	}
	for image, want := range cases {
		t.Run(image, func(t *testing.T) {
			reg.ResetRequests()
			got := v.Verify(context.Background(), image, nil)
			if got.Trust.Checked || got.Passed() || !strings.Contains(got.Trust.Error, want) {
				t.Fatalf("trust = %+v, want error containing %q", got.Trust, want)
			}
			if reg.Requests() != 0 {
				t.Fatalf("%d registry requests for an invalid reference", reg.Requests())
			}
		})
	}
}

func upper64() string { return strings.Repeat("AB", 32) }

func TestNoMatch(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	for _, mode := range []string{"", "deny", "audit", "allow"} {
		t.Run(mode, func(t *testing.T) {
			cfg := keyPolicy(t, reg, key)
			cfg.Policies[0].Images = []string{"gcr.io/company/*"}
			cfg.NoMatch = mode
			v := newVerifier(t, cfg, attestation.VerifierOptions{})
			reg.ResetRequests()
			got := v.Verify(context.Background(), "gcr.io/company-evil/app:v1", nil)
			wantMode, wantErr := mode, "no trust policy covers gcr.io/company-evil/app"
			if mode == "" {
				wantMode = "deny"
			}
			if mode == "allow" {
				wantErr = ""
			}
			if got.Trust.Policy != "" || got.Trust.NoMatch != wantMode || got.Trust.Checked || got.Trust.Error != wantErr || got.Passed() {
				t.Fatalf("trust = %+v", got.Trust)
			}
			if reg.Requests() != 0 {
				t.Fatal("an uncovered image reached a registry")
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{})
	got := v.Verify(context.Background(), reg.Tagged("nope", "v1"), nil)
	want := "image " + reg.Host() + "/nope:v1 not found in registry " + reg.Host()
	if got.Trust.Checked || got.Trust.Error != want {
		t.Fatalf("trust = %+v, want %q", got.Trust, want)
	}
}

func TestRegistryStallIsBounded(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{Timeout: 400 * time.Millisecond})
	reg.Stall(true)
	for _, image := range []string{reg.Tagged("team/app", "v1"), d.String()} {
		start := time.Now()
		got := v.Verify(context.Background(), image, nil)
		took := time.Since(start)
		want := "registry " + reg.Host() + " did not answer within 400ms"
		if got.Trust.Checked || got.Trust.Error != want {
			t.Fatalf("%s: trust = %+v, want %q", image, got.Trust, want)
		}
		if took > 600*time.Millisecond {
			t.Fatalf("%s: answered after %v, budget 400ms", image, took)
		}
	}
	// The caller's deadline, when sooner, is the budget.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	got := v.Verify(ctx, d.String(), nil)
	if !strings.HasPrefix(got.Trust.Error, "registry "+reg.Host()+" did not answer within 1") {
		t.Fatalf("trust.error = %q, want the 150ms budget", got.Trust.Error)
	}
	// VerifyAll keeps the caller's reserve: what goes to the registry ends that long before the deadline.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	all := v.VerifyAll(ctx, []string{d.String()}, nil, 1850*time.Millisecond)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("VerifyAll answered after %v, keeping 1.85s of a 2s deadline", took)
	}
	if e := all[d.String()].Trust.Error; !strings.HasPrefix(e, "registry "+reg.Host()+" did not answer within 1") {
		t.Fatalf("trust.error = %q, want the 150ms budget left by the reserve", e)
	}
}

func TestRateLimited(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{Timeout: 3 * time.Second})

	t.Run("retry-after beyond the budget", func(t *testing.T) {
		reg.RateLimit(100, "60")
		defer reg.RateLimit(0, "")
		start := time.Now()
		got := v.Verify(context.Background(), d.String(), nil)
		if got.Trust.Checked || got.Trust.Error != "rate-limited by "+reg.Host() {
			t.Fatalf("trust = %+v", got.Trust)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("waited %v for a Retry-After it could not honour", time.Since(start))
		}
	})
	t.Run("no retry-after", func(t *testing.T) {
		reg.RateLimit(100, "")
		defer reg.RateLimit(0, "")
		got := v.Verify(context.Background(), d.String(), nil)
		if got.Trust.Error != "rate-limited by "+reg.Host() {
			t.Fatalf("trust = %+v", got.Trust)
		}
	})
	t.Run("rate-limited midway", func(t *testing.T) {
		b := reg.PushRandomImage(t, "team/bundled", "v1")
		key.SignBundle(t, b)
		// ping and referrers pass; the bundle manifest is refused: that is no reason to say "no signature".
		reg.RateLimitAfter(2, 1, "")
		defer reg.RateLimit(0, "")
		got := v.Verify(context.Background(), b.String(), nil)
		if got.Trust.Checked || got.Trust.Error != "rate-limited by "+reg.Host() {
			t.Fatalf("trust = %+v", got.Trust)
		}
	})
	t.Run("retry-after within the budget", func(t *testing.T) {
		reg.RateLimit(1, "1")
		start := time.Now()
		got := v.Verify(context.Background(), d.String(), nil)
		if !got.Passed() {
			t.Fatalf("not passed after honouring Retry-After: %s", dump(got))
		}
		if took := time.Since(start); took < time.Second {
			t.Fatalf("answered after %v: Retry-After not honoured", took)
		}
	})
}

// TestOnlyConfiguredRegistriesContacted runs verification through a guarding transport: nothing but the image's
// registry is contacted (no TUF, Rekor, Fulcio or CT log), even with $COSIGN_REPOSITORY pointing elsewhere.
func TestOnlyConfiguredRegistriesContacted(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	ca := attestationtest.NewCA(t, "fulcio")
	t.Setenv("COSIGN_REPOSITORY", "registry.evil.example/sigs")
	t.Setenv("HOME", t.TempDir())
	guard := &attestationtest.GuardTransport{Allowed: []string{reg.Host()}}
	cfg := keyPolicy(t, reg, key, requireSLSA())
	cfg.Policies[0].Authorities = append(cfg.Policies[0].Authorities, keylessPolicy(t, reg, ca).Policies[0].Authorities...)
	v := newVerifier(t, cfg, attestation.VerifierOptions{Transport: guard})
	for _, f := range formats {
		d := reg.PushRandomImage(t, "app-"+f.name, "v1")
		f.sign(key, t, d)
		f.attest(ca.Keyless(t, ghIssuer, goodSubj), t, d, slsa, provenance)
		got := v.Verify(context.Background(), reg.Tagged("app-"+f.name, "v1"), nil)
		if !got.Passed() {
			t.Fatalf("%s: %s", f.name, dump(got))
		}
		if got.Signature.Authority != "release-key" || got.Attestations[0].Signer != goodSubj+" ("+ghIssuer+")" {
			t.Fatalf("%s: %s", f.name, dump(got))
		}
	}
	if refused := guard.Refused(); len(refused) > 0 {
		t.Fatalf("verification tried to reach %v", refused)
	}
	entries, _ := filepathGlob(t, "HOME")
	if len(entries) > 0 {
		t.Fatalf("verification wrote under $HOME: %v", entries)
	}
}

func TestVerifyAll(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	v := newVerifier(t, keyPolicy(t, reg, key), attestation.VerifierOptions{Concurrency: 2})
	var images []string
	for i := 0; i < 5; i++ {
		d := reg.PushRandomImage(t, fmt.Sprintf("app%d", i), "v1")
		if i%2 == 0 {
			key.Sign(t, d)
		}
		images = append(images, d.String(), d.String())
	}
	images = append(images, "")
	got := v.VerifyAll(context.Background(), images, nil, 0)
	if len(got) != 6 {
		t.Fatalf("%d results, want 6 distinct images", len(got))
	}
	for i, img := range images[:10] {
		if got[img].Passed() != (i/2%2 == 0) {
			t.Errorf("%s: passed = %v", img, got[img].Passed())
		}
	}
	if got[""].Trust.Error != "image reference is empty" {
		t.Errorf("empty image: %+v", got[""].Trust)
	}
}

func TestFactsMapIsTheJSONForm(t *testing.T) {
	f := attestation.Facts{
		Digest:       "sha256:" + strings.Repeat("a", 64),
		Trust:        attestation.TrustFacts{Policy: "release", NoMatch: "deny", Checked: true, Error: "x", RequiredAttestations: []string{slsa}},
		Signature:    attestation.SignatureFacts{Verified: true, Signer: "s", Authority: "a"},
		Attestations: []attestation.AttestationFacts{{PredicateType: slsa, Predicate: map[string]any{"k": []any{"v", 1.0, true, nil}}, Error: "e"}},
		VerifiedAt:   time.Now(),
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, f.Map()) {
		t.Fatalf("JSON form %v\n    Map() %v", fromJSON, f.Map())
	}
	keys := func(m map[string]any) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return strings.Join(sortStrings(ks), ",")
	}
	m := f.Map()
	for path, want := range map[string]string{
		"":          "attestations,digest,signature,trust",
		"trust":     "checked,configured,error,no_match,policy,required_attestations",
		"signature": "authority,error,signer,verified",
	} {
		sub := m
		if path != "" {
			sub = m[path].(map[string]any)
		}
		if got := keys(sub); got != want {
			t.Errorf("%q keys = %s, want %s", path, got, want)
		}
	}
	if got := keys(m["attestations"].([]any)[0].(map[string]any)); got != "error,predicate,predicate_type,signer,verified" {
		t.Errorf("attestation keys = %s", got)
	}
}
