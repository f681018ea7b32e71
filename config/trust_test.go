package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/attestation/attestationtest"
	"github.com/continuums/attest/config"
)

// trustYAML is a trust section whose key is a file relative to the config file.
const trustYAML = `
trust:
  noMatch: audit
  policies:
    - name: release
      images: ["registry.company.com/**", "gcr.io/company/*"]
      authorities:
        - name: release-key
          key: {pemFile: keys/release.pub}
      attestations:
        - predicateType: https://slsa.dev/provenance/v1
          policy: |
            package predicate
            import rego.v1
            deny contains "unexpected builder" if input.predicate.builder.id != "https://github.com/company/builder"
`

// keyDir is a directory holding keys/release.pub.
func keyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys"), "release.pub", attestationtest.NewKey(t).PublicKeyPEM(t))
	return dir
}

func matchedPolicy(t *testing.T, tp *attestation.TrustPolicies, image string) string {
	t.Helper()
	ref, err := attestation.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	if p := tp.Match(ref); p != nil {
		return p.Name()
	}
	return ""
}

func TestTrustSectionLoadsRelativeToTheConfigFile(t *testing.T) {
	dir := keyDir(t)
	path := writeFile(t, dir, "policies.yaml", trustYAML)
	// The working directory is the package's: only the config file's directory has keys/release.pub.
	cfg, err := config.Load(path, newEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	tp := cfg.Trust
	if tp.Len() != 1 || tp.NoMatch() != attestation.NoMatchAudit {
		t.Fatalf("trust: %d policies, noMatch %q", tp.Len(), tp.NoMatch())
	}
	if got := matchedPolicy(t, tp, "gcr.io/company/app:1"); got != "release" {
		t.Fatalf("gcr.io/company/app matched %q", got)
	}
	if got := matchedPolicy(t, tp, "gcr.io/company-evil/app:1"); got != "" {
		t.Fatalf("gcr.io/company-evil/app matched %q", got)
	}
	if cfg.Mutation.PinDigests != config.PinPods {
		t.Fatalf("pinDigests defaults to %q", cfg.Mutation.PinDigests)
	}

	// The watcher resolves against the file's directory too, on start and on reload.
	w, err := config.NewWatcher(path, newEngine(t), discard, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	hash := w.Current().Trust.Hash()
	writeFile(t, filepath.Join(dir, "keys"), "release.pub", attestationtest.NewKey(t).PublicKeyPEM(t))
	writeFile(t, dir, "policies.yaml", strings.Replace(trustYAML, "noMatch: audit", "noMatch: deny", 1))
	w.Reload()
	if got := w.Current().Trust; got.NoMatch() != attestation.NoMatchDeny || got.Hash() == hash {
		t.Fatalf("after reload: noMatch %q, hash changed %v", got.NoMatch(), got.Hash() != hash)
	}
}

func TestTrustSectionParseUsesTheWorkingDirectory(t *testing.T) {
	t.Chdir(keyDir(t))
	cfg, err := config.Parse([]byte(trustYAML), newEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trust.Len() != 1 {
		t.Fatalf("%d trust policies", cfg.Trust.Len())
	}
	cfg, err = config.ParseIn([]byte(trustYAML), newEngine(t), keyDir(t))
	if err != nil || cfg.Trust.Len() != 1 {
		t.Fatalf("ParseIn: %v", err)
	}
}

func TestNoTrustSection(t *testing.T) {
	cfg, err := config.Parse([]byte("policies: []\n"), newEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trust != nil || cfg.Trust.Len() != 0 || cfg.Trust.NoMatch() != attestation.NoMatchDeny {
		t.Fatalf("trust = %+v", cfg.Trust)
	}
	if d := config.Default(newEngine(t)); d.Trust != nil || d.Mutation.PinDigests != config.PinPods {
		t.Fatalf("default: trust %v, mutation %+v", d.Trust, d.Mutation)
	}
}

func TestTrustSectionErrors(t *testing.T) {
	dir := keyDir(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"keyless without identity", `
trust:
  policies:
    - name: ci
      images: ["gcr.io/company/**"]
      authorities:
        - name: fulcio
          keyless: {roots: {pemFile: keys/release.pub}}
`, "trust.policies[0].authorities[0].keyless.identities: at least one identity is required: without one, any certificate the roots issued would be accepted"},
		{"missing key file", `
trust:
  policies:
    - name: release
      images: ["gcr.io/company/**"]
      authorities: [{name: k, key: {pemFile: keys/missing.pub}}]
`, "trust.policies[0].authorities[0].key: pemFile: open " + filepath.Join(dir, "keys", "missing.pub") + ": no such file or directory"},
		{"secretRef without a cluster", `
trust:
  policies:
    - name: release
      images: ["gcr.io/company/**"]
      authorities: [{name: k, key: {secretRef: {namespace: attest-system, name: keys, key: release.pub}}}]
`, "trust.policies[0].authorities[0].key: secretRef attest-system/keys needs a cluster: no Secret reader is configured (use pem or pemFile offline)"},
		{"bad noMatch", "trust:\n  noMatch: maybe\n", `trust.noMatch: "maybe" is not one of deny, audit, allow`},
		{"unknown field", "trust:\n  policies:\n    - name: x\n      imagez: []\n", `unknown field "trust.policies[0].imagez"`},
		{"bad pinDigests", "mutation:\n  pinDigests: deployments\n", `mutation.pinDigests: "deployments" is not one of pods, all, off`},
		{"pinDigests true", "mutation:\n  pinDigests: yes\n", "true is not a pinDigests value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "policies.yaml", tc.yaml)
			_, err := config.Load(path, newEngine(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n got %v\nwant it to contain %s", err, tc.want)
			}
		})
	}
}

func TestPinDigests(t *testing.T) {
	for _, tc := range []struct {
		yaml            string
		want            config.PinDigests
		pod, deployment bool
	}{
		{"", config.PinPods, true, false},
		{"mutation: {pinDigests: pods}", config.PinPods, true, false},
		{"mutation: {pinDigests: all}", config.PinAll, true, true},
		{"mutation: {pinDigests: off}", config.PinOff, false, false}, // YAML 1.1 reads off as false
		{`mutation: {pinDigests: "off"}`, config.PinOff, false, false},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.yaml), newEngine(t))
			if err != nil {
				t.Fatal(err)
			}
			m := cfg.Mutation
			if m.PinDigests != tc.want || m.Pins("Pod") != tc.pod || m.Pins("Deployment") != tc.deployment {
				t.Fatalf("mutation %+v: pins Pod %v, Deployment %v", m, m.Pins("Pod"), m.Pins("Deployment"))
			}
		})
	}
}
