package attestation_test

import (
	"context"
	"testing"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

func TestOfflineVerifier(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	key.Attest(t, d, slsa, provenance)
	tp, err := attestation.NewTrustPolicies(keyPolicy(t, reg, key, requireSLSA()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg.ResetRequests()
	v := attestation.NewOfflineVerifier(tp)
	got := v.VerifyAll(context.Background(), []string{reg.Tagged("team/app", "v1"), d.String(), "gcr.io/other/app:1", ""}, nil, 0)
	for _, img := range []string{reg.Tagged("team/app", "v1"), d.String()} {
		f := got[img]
		if f.Trust.Policy != "release" || f.Trust.Checked || f.Trust.Error != attestation.NotCheckedOffline || f.Passed() ||
			len(f.Trust.RequiredAttestations) != 1 || len(f.Attestations) != 1 || f.Attestations[0].PredicateType != slsa || f.Digest != "" {
			t.Errorf("%s: %s", img, dump(f))
		}
	}
	if f := got["gcr.io/other/app:1"]; f.Trust.Policy != "" || f.Trust.Error != "no trust policy covers gcr.io/other/app" {
		t.Errorf("uncovered: %s", dump(f))
	}
	if f := got[""]; f.Trust.Error != "image reference is empty" {
		t.Errorf("empty: %s", dump(f))
	}
	if reg.Requests() != 0 {
		t.Fatalf("offline verification made %d registry requests", reg.Requests())
	}
}
