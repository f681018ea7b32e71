package attestation_test

import (
	"context"
	"testing"
	"time"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

// TestExpiredCertificateWithTransparencyLog: Fulcio certificates live ten minutes, so a keyless signature is
// verified at the time a transparency log says it was made. The log's key comes from trustedRootFile; nothing is
// fetched. (Legacy signatures carrying a Rekor v1 SET; the sigstore-bundle path takes the same trust material
// through sigstore-go but has no test of its own here.)
func TestExpiredCertificateWithTransparencyLog(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	ca := attestationtest.NewCA(t, "fulcio")
	log := attestationtest.NewLog(t)
	dir := t.TempDir()
	writeFile(t, dir, "trusted_root.json", string(ca.TrustedRootJSON(t, log)))
	off := false
	cfg := func(tlog *bool, roots bool) attestation.TrustConfig {
		kl := &attestation.KeylessConfig{Identities: []attestation.IdentityConfig{{Issuer: ghIssuer, Subject: goodSubj}}}
		if roots {
			kl.Roots = &attestation.PEMSource{PEM: ca.RootsPEM(t)}
		} else {
			kl.TrustedRootFile = "trusted_root.json"
		}
		return attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "release", Images: []string{reg.Host() + "/**"},
			Authorities: []attestation.AuthorityConfig{{Name: "ci", TLog: tlog, CTLog: &off, Keyless: kl}}}}}
	}
	load := func(c attestation.TrustConfig) *attestation.Verifier {
		tp, err := attestation.NewTrustPolicies(c, dir)
		if err != nil {
			t.Fatal(err)
		}
		return attestation.NewVerifier(tp, attestation.VerifierOptions{})
	}
	withLog := load(cfg(nil, false)) // tlog defaults to on with a trusted root
	withoutLog := load(cfg(&off, true))

	now := time.Now()
	expired := func() *attestationtest.Signer {
		return ca.KeylessAt(t, ghIssuer, goodSubj, now.Add(-2*time.Hour), now.Add(-2*time.Hour+10*time.Minute))
	}
	logged := reg.PushRandomImage(t, "team/logged", "v1")
	expired().SignLogged(t, logged, log, now.Add(-2*time.Hour+5*time.Minute))
	unlogged := reg.PushRandomImage(t, "team/unlogged", "v1")
	expired().Sign(t, unlogged)
	late := reg.PushRandomImage(t, "team/late", "v1")
	expired().SignLogged(t, late, log, now.Add(-time.Hour)) // logged after the certificate expired
	forged := reg.PushRandomImage(t, "team/forged", "v1")
	expired().SignLogged(t, forged, attestationtest.NewLog(t), now.Add(-2*time.Hour+5*time.Minute)) // a log nobody trusts
	fresh := reg.PushRandomImage(t, "team/fresh", "v1")
	ca.Keyless(t, ghIssuer, goodSubj).Sign(t, fresh)

	signer := goodSubj + " (" + ghIssuer + ")"
	cases := []struct {
		name  string
		v     *attestation.Verifier
		image string
		want  string
	}{
		{"expired certificate, logged while valid", withLog, logged.String(), ""},
		{"expired certificate, not logged", withLog, unlogged.String(),
			"no signature from authority 'ci' (found 1 signature: signature by " + signer + " has no transparency-log proof)"},
		{"expired certificate, logged after expiry", withLog, late.String(),
			"no signature from authority 'ci' (found 1 signature: certificate of " + signer + " has expired and no log entry or timestamp proves it was valid when used)"},
		{"entry signed by an untrusted log", withLog, forged.String(),
			"no signature from authority 'ci' (found 1 signature: signature by " + signer + " carries a transparency-log entry no trusted log vouches for)"},
		{"valid certificate, not logged, log required", withLog, fresh.String(),
			"no signature from authority 'ci' (found 1 signature: signature by " + signer + " has no transparency-log proof)"},
		{"expired certificate without a log", withoutLog, unlogged.String(),
			"no signature from authority 'ci' (found 1 signature: certificate of " + signer + " has expired and no log entry or timestamp proves it was valid when used)"},
		{"valid certificate without a log", withoutLog, fresh.String(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.v.Verify(context.Background(), tc.image, nil)
			if got.Signature.Error != tc.want || got.Passed() != (tc.want == "") {
				t.Fatalf("signature error:\n got %q\nwant %q", got.Signature.Error, tc.want)
			}
		})
	}
}
