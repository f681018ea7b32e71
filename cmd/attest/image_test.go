//go:build !lean

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/attestation/attestationtest"
)

const slsaType = "https://slsa.dev/provenance/v1"

// imageFixture is a registry with a signed and attested image and an unsigned one, and a policies.yaml whose trust
// section names the key by a path relative to the file.
func imageFixture(t *testing.T) (reg *attestationtest.Registry, signed, unsigned, cfgPath string, keyID string) {
	t.Helper()
	reg = attestationtest.NewRegistry(t)
	key := attestationtest.NewKey(t)
	d := reg.PushRandomImage(t, "team/app", "v1")
	key.Sign(t, d)
	key.AttestBundle(t, d, slsaType, map[string]any{"builder": map[string]any{"id": "https://github.com/company/builder"}})
	reg.PushRandomImage(t, "team/unsigned", "v1")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "release.pub"), []byte(key.PublicKeyPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "policies.yaml")
	yaml := `trust:
  noMatch: audit
  policies:
    - name: release
      images: ["` + reg.Host() + `/**"]
      authorities:
        - name: release-key
          key: {pemFile: keys/release.pub}
      attestations:
        - predicateType: ` + slsaType + `
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return reg, reg.Tagged("team/app", "v1"), reg.Tagged("team/unsigned", "v1"), cfgPath, key.KeyID(t)
}

func TestImageVerifyText(t *testing.T) {
	_, signed, unsigned, cfg, keyID := imageFixture(t)
	out, errOut, code := attest(t, "", "image", "verify", "--config", cfg, signed)
	if code != 0 {
		t.Fatalf("signed image: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		signed + "\n",
		"  trust policy: release\n",
		"  signature:    verified, signer " + keyID + ", authority release-key\n",
		"  attestation:  " + slsaType + " verified, signer " + keyID + "\n",
		"  result:       PASS\n",
		"1 images: 1 passed, 0 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, _, code = attest(t, "", "image", "verify", "--config", cfg, signed, unsigned, "gcr.io/company/app:1")
	if code != 1 {
		t.Fatalf("unsigned image: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"  signature:    not verified: no signature from authority 'release-key'\n",
		"  attestation:  " + slsaType + " not verified: attestation " + slsaType + " missing\n",
		"  result:       FAIL: no signature from authority 'release-key'; attestation " + slsaType + " missing\n",
		"gcr.io/company/app:1\n  trust policy: none (trust.noMatch: audit)\n  result:       AUDIT: no trust policy covers gcr.io/company/app (trust.noMatch is audit)\n",
		"3 images: 1 passed, 1 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestImageVerifyJSON(t *testing.T) {
	_, signed, unsigned, cfg, keyID := imageFixture(t)
	out, _, code := attest(t, "", "image", "verify", "--config", cfg, "--format", "json", signed, unsigned)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	var report struct {
		Images []struct {
			Image  string         `json:"image"`
			Result string         `json:"result"`
			Facts  map[string]any `json:"facts"`
		} `json:"images"`
		Passed, Failed int
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(report.Images) != 2 || report.Passed != 1 || report.Failed != 1 {
		t.Fatalf("report: %s", out)
	}
	ok, bad := report.Images[0], report.Images[1]
	if ok.Image != signed || ok.Result != "passed" || bad.Result != "failed" {
		t.Fatalf("results: %s", out)
	}
	// The facts are input.images[image]: the reference facts and the verifier's.
	sig := ok.Facts["signature"].(map[string]any)
	att := ok.Facts["attestations"].([]any)[0].(map[string]any)
	if ok.Facts["tag"] != "v1" || !strings.HasPrefix(ok.Facts["digest"].(string), "sha256:") || sig["signer"] != keyID ||
		att["predicate_type"] != slsaType || att["predicate"].(map[string]any)["builder"] == nil {
		t.Fatalf("facts: %s", out)
	}
	if trust := bad.Facts["trust"].(map[string]any); trust["policy"] != "release" || trust["checked"] != true {
		t.Fatalf("unsigned facts: %s", out)
	}
}

func TestImageVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"image", "verify"},
		{"image", "verify", "--format", "yaml", "nginx"},
		{"image", "verify", "--config", "testdata/missing.yaml", "nginx"},
	} {
		if _, errOut, code := attest(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	// No trust section: no trust policy covers the image, and noMatch defaults to deny.
	out, _, code := attest(t, "", "image", "verify", "gcr.io/company/app:1")
	if code != 1 || !strings.Contains(out, "result:       FAIL: no trust policy covers gcr.io/company/app\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
