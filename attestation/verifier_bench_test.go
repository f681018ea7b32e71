package attestation_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

// BenchmarkColdVerification verifies one image (signature + one attestation, with a predicate check) against
// the loopback registry with no cache: tag resolution, referrers lookup, then the signature and attestation, in
// each format. It reports the registry requests each verification makes.
func BenchmarkColdVerification(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			reg := attestationtest.NewRegistry(b)
			key := attestationtest.NewKey(b)
			d := reg.PushRandomImage(b, "team/app", "v1")
			f.sign(key, b, d)
			f.attest(key, b, d, slsa, provenance)
			check := attestation.AttestationConfig{PredicateType: slsa, Policy: "package predicate\nimport rego.v1\ndeny contains \"unexpected builder\" if input.predicate.builder.id != \"" + builderOK + "\"\n"}
			v := newVerifier(b, keyPolicy(b, reg, key, check), attestation.VerifierOptions{})
			image := reg.Tagged("team/app", "v1")
			if got := v.Verify(context.Background(), image, nil); !got.Passed() {
				b.Fatalf("%s", dump(got))
			}
			reg.ResetRequests()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if got := v.Verify(context.Background(), image, nil); !got.Passed() {
					b.Fatal(got.Trust.Error)
				}
			}
			b.ReportMetric(float64(reg.Requests())/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkWarmDeployment verifies the three images of a three-container Deployment by tag with a warm cache:
// what an admission pays once the images are known.
func BenchmarkWarmDeployment(b *testing.B) {
	reg := attestationtest.NewRegistry(b)
	key := attestationtest.NewKey(b)
	cache, err := attestation.NewCache(attestation.CacheOptions{})
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, keyPolicy(b, reg, key, requireSLSA()), attestation.VerifierOptions{Cache: cache})
	var images []string
	for i := range 3 {
		repo := fmt.Sprintf("team/app%d", i)
		d := reg.PushRandomImage(b, repo, "v1")
		key.Sign(b, d)
		key.Attest(b, d, slsa, provenance)
		images = append(images, reg.Tagged(repo, "v1"))
	}
	for _, f := range v.VerifyAll(context.Background(), images, nil, 0) {
		if !f.Passed() {
			b.Fatalf("%s", dump(f))
		}
	}
	reg.ResetRequests()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		facts := v.VerifyAll(context.Background(), images, nil, 0)
		if len(facts) != 3 {
			b.Fatal(len(facts))
		}
	}
	b.ReportMetric(float64(reg.Requests())/float64(b.N), "requests/op")
}

// BenchmarkWarmVerify is one cached image by digest.
func BenchmarkWarmVerify(b *testing.B) {
	reg := attestationtest.NewRegistry(b)
	key := attestationtest.NewKey(b)
	cache, err := attestation.NewCache(attestation.CacheOptions{})
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, keyPolicy(b, reg, key), attestation.VerifierOptions{Cache: cache})
	d := reg.PushRandomImage(b, "team/app", "v1")
	key.Sign(b, d)
	if got := v.Verify(context.Background(), d.String(), nil); !got.Passed() {
		b.Fatalf("%s", dump(got))
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Verify(context.Background(), d.String(), nil)
	}
}
