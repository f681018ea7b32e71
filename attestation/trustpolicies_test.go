package attestation_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
)

// issueExample is the trust section exactly as the configuration documents it.
const issueExample = `
trust:
  noMatch: deny
  policies:
    - name: release
      images: ["registry.company.com/**", "gcr.io/company/*"]
      authorities:
        - name: release-key
          key: {pemFile: keys/release.pub}
        - name: ci
          keyless:
            roots: {pemFile: keys/ca.pem}
            identities: [{issuer: "https://token.actions.githubusercontent.com", subjectRegExp: "^https://github.com/company/.*"}]
          tlog: false
      attestations:
        - predicateType: https://slsa.dev/provenance/v1
          policy: |
            package predicate
            deny contains "unexpected builder" if input.predicate.builder.id != "https://github.com/company/builder"
`

// decodeStrict decodes YAML the way the config package does: to JSON, then with unknown fields refused.
func decodeStrict(t testing.TB, doc string) attestation.TrustConfig {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Trust attestation.TrustConfig `json:"trust"`
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	return file.Trust
}

func exampleDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "keys/release.pub", attestationtest.NewKey(t).PublicKeyPEM(t))
	writeFile(t, dir, "keys/ca.pem", attestationtest.NewCA(t, "fulcio").RootsPEM(t))
	return dir
}

func TestTrustConfigFromYAML(t *testing.T) {
	cfg := decodeStrict(t, issueExample)
	tp, err := attestation.NewTrustPolicies(cfg, exampleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if tp.Len() != 1 || tp.NoMatch() != "deny" || len(tp.Hash()) != 64 {
		t.Fatalf("len %d, noMatch %q, hash %q", tp.Len(), tp.NoMatch(), tp.Hash())
	}
	cases := map[string]string{
		"registry.company.com/app:v1":                                     "release",
		"REGISTRY.COMPANY.COM/team/a/b@sha256:" + strings.Repeat("1", 64): "release",
		"gcr.io/company/app":                                              "release",
		"gcr.io/company/team/app":                                         "",
		"gcr.io/company-evil/app":                                         "",
		"gcr.io.evil.com/company/app":                                     "",
		"registry.company.com.evil.io/app":                                "",
		"nginx":                                                           "",
	}
	for image, want := range cases {
		ref, err := attestation.ParseReference(image)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if p := tp.Match(ref); p != nil {
			got = p.Name()
			if strings.Join(p.RequiredAttestations(), ",") != "https://slsa.dev/provenance/v1" {
				t.Errorf("required attestations %v", p.RequiredAttestations())
			}
		}
		if got != want {
			t.Errorf("%s matched %q, want %q", image, got, want)
		}
	}
}

func TestTrustConfigErrors(t *testing.T) {
	dir := exampleDir(t)
	keyPEM := attestationtest.NewKey(t).PublicKeyPEM(t)
	caPEM := attestationtest.NewCA(t, "ca").RootsPEM(t)
	writeFile(t, dir, "trusted_root.json", string(attestationtest.NewCA(t, "tr").TrustedRootJSON(t)))
	key := func() *attestation.KeyConfig { return &attestation.KeyConfig{PEM: keyPEM} }
	id := []attestation.IdentityConfig{{Issuer: "https://issuer", Subject: "a@b.c"}}
	policy := func(auth ...attestation.AuthorityConfig) attestation.TrustConfig {
		return attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/x/**"}, Authorities: auth}}}
	}
	yes := true
	cases := []struct {
		name string
		cfg  attestation.TrustConfig
		want string
	}{
		{"keyless without identity", policy(attestation.AuthorityConfig{Name: "ci", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM}}}),
			"trust.policies[0].authorities[0].keyless.identities: at least one identity is required: without one, any certificate the roots issued would be accepted"},
		{"identity without subject", policy(attestation.AuthorityConfig{Name: "ci", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM},
			Identities: []attestation.IdentityConfig{{Issuer: "https://issuer"}}}}),
			"trust.policies[0].authorities[0].keyless.identities[0]: a subject (subject or subjectRegExp) is required"},
		{"identity without issuer", policy(attestation.AuthorityConfig{Name: "ci", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM},
			Identities: []attestation.IdentityConfig{{SubjectRegExp: ".*"}}}}),
			"trust.policies[0].authorities[0].keyless.identities[0]: an issuer (issuer or issuerRegExp) is required"},
		{"bad subject expression", policy(attestation.AuthorityConfig{Name: "ci", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM},
			Identities: []attestation.IdentityConfig{{Issuer: "i", SubjectRegExp: "("}}}}),
			"trust.policies[0].authorities[0].keyless.identities[0]: subjectRegExp: error parsing regexp: missing closing ): `(`"},
		{"both key and keyless", policy(attestation.AuthorityConfig{Name: "a", Key: key(), Keyless: &attestation.KeylessConfig{}}),
			"trust.policies[0].authorities[0]: set one of key and keyless, not both"},
		{"neither key nor keyless", policy(attestation.AuthorityConfig{Name: "a"}),
			"trust.policies[0].authorities[0]: one of key and keyless is required"},
		{"no authority", policy(), "trust.policies[0].authorities: at least one authority is required"},
		{"duplicate authority", policy(attestation.AuthorityConfig{Name: "a", Key: key()}, attestation.AuthorityConfig{Name: "a", Key: key()}),
			`trust.policies[0].authorities[1].name: "a" is already the name of authorities[0]`},
		{"key not PEM", policy(attestation.AuthorityConfig{Name: "a", Key: &attestation.KeyConfig{PEM: "nope"}}),
			"trust.policies[0].authorities[0].key: not a PEM public key"},
		{"key file missing", policy(attestation.AuthorityConfig{Name: "a", Key: &attestation.KeyConfig{PEMFile: "keys/missing.pub"}}),
			"trust.policies[0].authorities[0].key: pemFile: open "},
		{"two key sources", policy(attestation.AuthorityConfig{Name: "a", Key: &attestation.KeyConfig{PEM: keyPEM, PEMFile: "keys/release.pub"}}),
			"trust.policies[0].authorities[0].key: set exactly one of pem, pemFile and secretRef"},
		{"secretRef without a cluster", policy(attestation.AuthorityConfig{Name: "a", Key: &attestation.KeyConfig{SecretRef: &attestation.SecretRef{Namespace: "ns", Name: "keys", Key: "cosign.pub"}}}),
			"trust.policies[0].authorities[0].key: secretRef ns/keys needs a cluster: no Secret reader is configured (use pem or pemFile offline)"},
		{"tlog on a key", policy(attestation.AuthorityConfig{Name: "a", Key: key(), TLog: &yes}),
			"trust.policies[0].authorities[0].tlog: transparency-log checks need the log's keys, which only a keyless trustedRootFile provides; set tlog: false for a key authority"},
		{"tlog without trusted root", policy(attestation.AuthorityConfig{Name: "a", TLog: &yes, Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM}, Identities: id}}),
			"trust.policies[0].authorities[0].tlog: transparency-log checks need the log's keys: use keyless.trustedRootFile, or set tlog: false"},
		{"trusted root without logs, tlog by default", policy(attestation.AuthorityConfig{Name: "a", Keyless: &attestation.KeylessConfig{TrustedRootFile: "trusted_root.json", Identities: id}}),
			"trust.policies[0].authorities[0].tlog: the trusted root lists no transparency log; set tlog: false or use a trusted root with one"},
		{"roots without a root", policy(attestation.AuthorityConfig{Name: "a", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: intermediateOnly(t)}, Identities: id}}),
			"trust.policies[0].authorities[0].keyless.roots: no self-signed root certificate; include the root CA, not only intermediates"},
		{"roots and trusted root", policy(attestation.AuthorityConfig{Name: "a", Keyless: &attestation.KeylessConfig{Roots: &attestation.PEMSource{PEM: caPEM}, TrustedRootFile: "x.json", Identities: id}}),
			"trust.policies[0].authorities[0].keyless: set one of roots and trustedRootFile, not both"},
		{"bad noMatch", attestation.TrustConfig{NoMatch: "warn"}, `trust.noMatch: "warn" is not one of deny, audit, allow`},
		{"no images", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}}}},
			"trust.policies[0].images: at least one image glob is required"},
		{"glob without host", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"nginx"}, Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}}}},
			`trust.policies[0].images[0]: "nginx" must start with a registry host, e.g. docker.io/library/nginx`},
		{"glob with tag", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/app:v1"}, Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}}}},
			`trust.policies[0].images[0]: "gcr.io/app:v1": globs match repositories; remove the tag`},
		{"duplicate policy", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{
			{Name: "p", Images: []string{"gcr.io/a/*"}, Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}},
			{Name: "p", Images: []string{"gcr.io/b/*"}, Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}}}},
			`trust.policies[1].name: "p" is already the name of trust.policies[0]`},
		{"empty predicate type", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/a/*"},
			Authorities: []attestation.AuthorityConfig{{Name: "a", Key: key()}}, Attestations: []attestation.AttestationConfig{{}}}}},
			"trust.policies[0].attestations[0].predicateType: a predicate type is required, e.g. https://slsa.dev/provenance/v1"},
		{"impure predicate check", attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/a/*"},
			Authorities:  []attestation.AuthorityConfig{{Name: "a", Key: key()}},
			Attestations: []attestation.AttestationConfig{{PredicateType: "t", Policy: "package p\nimport rego.v1\ndeny contains \"x\" if time.now_ns() > 0\n"}}}}},
			"trust.policies[0].attestations[0].policy: p/t.rego:3: rego_compile_error: time.now_ns is not allowed in predicate checks: it reads the clock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := attestation.NewTrustPolicies(tc.cfg, dir)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant prefix %q", err, tc.want)
			}
		})
	}
}

func intermediateOnly(t testing.TB) string {
	t.Helper()
	all := attestationtest.NewCA(t, "x").RootsPEM(t)
	// RootsPEM is root then intermediate: keep the second block.
	i := strings.Index(all[1:], "-----BEGIN CERTIFICATE-----")
	return all[i+1:]
}

func TestTrustConfigReportsEveryError(t *testing.T) {
	cfg := attestation.TrustConfig{NoMatch: "x", Policies: []attestation.TrustPolicyConfig{{Images: []string{"nginx"}}}}
	_, err := attestation.NewTrustPolicies(cfg, t.TempDir())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"trust.noMatch", "trust.policies[0].name", "trust.policies[0].images[0]", "trust.policies[0].authorities"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported in:\n%v", want, err)
		}
	}
}

func TestKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]any{"rsa": &rsaKey.PublicKey, "ed25519": edPub, "ecdsa p-384": &ecKey.PublicKey} {
		t.Run(name, func(t *testing.T) {
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			cfg := attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/a/*"},
				Authorities: []attestation.AuthorityConfig{{Name: "a", Key: &attestation.KeyConfig{PEM: p}}}}}}
			if _, err := attestation.NewTrustPolicies(cfg, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type fakeSecrets map[string]string

func (f fakeSecrets) ReadSecret(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := f[ns+"/"+name+"/"+key]
	if !ok {
		return nil, errors.New("secrets \"" + name + "\" not found")
	}
	return []byte(v), nil
}

func TestSecretRef(t *testing.T) {
	key := attestationtest.NewKey(t)
	cfg := attestation.TrustConfig{Policies: []attestation.TrustPolicyConfig{{Name: "p", Images: []string{"gcr.io/a/*"},
		Authorities: []attestation.AuthorityConfig{{Name: "a", Key: &attestation.KeyConfig{SecretRef: &attestation.SecretRef{Namespace: "attest", Name: "keys", Key: "cosign.pub"}}}}}}}
	if _, err := attestation.NewTrustPolicies(cfg, "", attestation.WithSecretReader(fakeSecrets{"attest/keys/cosign.pub": key.PublicKeyPEM(t)})); err != nil {
		t.Fatal(err)
	}
	_, err := attestation.NewTrustPolicies(cfg, "", attestation.WithSecretReader(fakeSecrets{}))
	want := `trust.policies[0].authorities[0].key: secretRef attest/keys key "cosign.pub": secrets "keys" not found`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestPolicyHash(t *testing.T) {
	dir := exampleDir(t)
	load := func(cfg attestation.TrustConfig) string {
		t.Helper()
		tp, err := attestation.NewTrustPolicies(cfg, dir)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := attestation.ParseReference("gcr.io/company/app")
		return tp.Match(ref).Hash()
	}
	base := load(decodeStrict(t, issueExample))
	if again := load(decodeStrict(t, issueExample)); again != base {
		t.Fatal("the same configuration hashed differently")
	}
	changed := decodeStrict(t, issueExample)
	changed.Policies[0].Authorities[1].Keyless.Identities[0].SubjectRegExp = "^https://github.com/other/.*"
	if load(changed) == base {
		t.Error("a changed identity kept the hash")
	}
	writeFile(t, dir, "keys/release.pub", attestationtest.NewKey(t).PublicKeyPEM(t))
	if load(decodeStrict(t, issueExample)) == base {
		t.Error("a rotated key file kept the hash")
	}
}
