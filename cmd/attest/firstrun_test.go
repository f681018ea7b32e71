package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/config"
)

// firstRunMessage is require-attestation's one finding for a Deployment when the configuration has no trust section.
const firstRunMessage = `[require-attestation] spec.template.spec: no image is verified: policies.yaml has no trust section; add trust.policies to policies.yaml naming your images and the keys or identities that sign them (README: Image trust)`

const firstRunDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "gcr.io/company/web:1.4.2"}
      - {name: side, image: "gcr.io/company/side:2.0"}
`

// firstRunConfigs: a configuration that names only the policies the user cares about (a first run), and the same
// with require-attestation's mode set to enforce.
var firstRunConfigs = map[string]string{
	"first run": "policies:\n  - {name: require-attestation, enabled: true}\n  - {name: trusted-registries, parameters: {trusted_registries: [gcr.io/company]}}\n",
	"enforce":   "policies:\n  - {name: require-attestation, mode: enforce}\n  - {name: trusted-registries, parameters: {trusted_registries: [gcr.io/company]}}\n",
}

// TestFirstRunCLI: `attest policy check` of a Deployment with no trust section reports require-attestation once, as
// a warning, and exits 0; with mode enforce it denies, once, and exits 1.
func TestFirstRunCLI(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "deploy.yaml")
	if err := os.WriteFile(manifest, []byte(firstRunDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		config string
		code   int
		mode   string
		denied bool
	}{
		{"first run", 0, "audit", false},
		{"enforce", 1, "enforce", true},
	} {
		t.Run(c.config, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(c.config, " ", "-")+".yaml")
			if err := os.WriteFile(cfg, []byte(firstRunConfigs[c.config]), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := attest(t, "", "policy", "check", "-f", manifest, "--config", cfg, "--format", "json")
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s\n%s", code, c.code, errOut, out)
			}
			var report checkReport
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatal(err)
			}
			var got []checkResult
			for _, r := range report.Results {
				if r.Policy == config.RequireAttestationPolicy {
					got = append(got, r)
				}
			}
			if len(got) != 1 || got[0].Message != firstRunMessage || got[0].Mode != c.mode || got[0].Denied != c.denied {
				t.Fatalf("require-attestation results %+v, want one in mode %s (denied %v): %s", got, c.mode, c.denied, firstRunMessage)
			}
		})
	}
}
