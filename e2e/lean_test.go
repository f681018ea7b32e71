package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// leanBinary is the lean CLI that `make build` writes to bin/attest beside bin/attest-full; the test is skipped
// for a binary without attest-full beside it (a full build given as ATTEST_BIN by hand).
func leanBinary(t *testing.T) string {
	t.Helper()
	bin := cluster.AttestBinary()
	if bin == "" {
		t.Skip("needs the attest binary (local harness)")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "attest-full")); err != nil {
		t.Skipf("%s has no attest-full beside it: not the lean build of `make build`", bin)
	}
	return bin
}

// recorder is a stand-in for attest-full that prints the arguments and stdin it was given.
func recorder(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "record-full")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"args: $*\"\necho \"stdin: $(cat)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// trustConfig writes a configuration with one key-based trust policy, which `policy check` can only judge with a
// registry.
func trustConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "trust:\n  policies:\n  - name: release\n    images: [\"gcr.io/company/**\"]\n    authorities:\n    - name: release-key\n      key: {pemFile: release.pub}\n"
	path := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The lean CLI runs what needs a registry, a cluster or the webhook server in attest-full, with the same arguments
// and the stdin it has not read; what it can do itself it does without attest-full; without attest-full it says
// what is missing.
func TestLeanCLIHandsOverToTheFullBuild(t *testing.T) {
	bin := leanBinary(t)
	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n  - {name: app, image: gcr.io/company/app:1.0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(t.TempDir(), "attest")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	const template = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8sdemo}\nspec:\n  crd: {spec: {names: {kind: K8sDemo}}}\n  targets:\n  - target: admission.k8s.gatekeeper.sh\n    rego: |\n      package k8sdemo\n      violation[{\"msg\": \"demo\"}] { false }\n"
	templateFile := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(templateFile, []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	full := recorder(t)
	trust := trustConfig(t)
	tests := []struct {
		name      string
		bin       string
		full      string // ATTEST_FULL_BINARY; "" leaves it unset
		args      []string
		stdin     string
		wantCode  int
		wantOut   []string
		wantErr   string
		notOutput string
	}{
		{name: "serve", bin: bin, full: full, args: []string{"serve", "--port", "9443"},
			wantOut: []string{"args: serve --port 9443"}},
		{name: "image verify", bin: bin, full: full, args: []string{"image", "verify", "gcr.io/company/app:1.0"},
			wantOut: []string{"args: image verify gcr.io/company/app:1.0"}},
		{name: "policy exemptions list", bin: bin, full: full, args: []string{"policy", "exemptions", "list", "-A"},
			wantOut: []string{"args: policy exemptions list -A"}},
		{name: "check against a registry, stdin handed over", bin: bin, full: full, stdin: "kind: Pod",
			args:    []string{"policy", "check", "--config", trust, "-f", "-"},
			wantOut: []string{"args: policy check --config " + trust + " -f -", "stdin: kind: Pod"}},
		{name: "check with a ConstraintTemplate among its inputs", bin: bin, full: full, stdin: template,
			args:    []string{"policy", "check", "-f", "-"},
			wantOut: []string{"args: policy check -f -", "stdin: " + strings.SplitN(template, "\n", 2)[0]}},
		{name: "check with --inventory", bin: bin, full: full,
			args:    []string{"policy", "check", "-f", manifest, "--inventory", manifest},
			wantOut: []string{"args: policy check -f " + manifest + " --inventory " + manifest}},
		{name: "validate of a Gatekeeper template", bin: bin, full: full,
			args:    []string{"policy", "validate", templateFile},
			wantOut: []string{"args: policy validate " + templateFile}},
		{name: "check of the cluster", bin: bin, full: full, args: []string{"policy", "check", "--cluster", "-A"},
			wantOut: []string{"args: policy check --cluster -A"}},
		{name: "check offline runs in the lean build", bin: bin, full: full, wantCode: 1,
			args:      []string{"policy", "check", "--config", trust, "--offline", "-f", manifest},
			wantOut:   []string{"DENY Pod shop/web: [require-attestation]", "not checked (--offline)"},
			notOutput: "args:"},
		{name: "check without trust policies needs no attest-full", bin: alone, wantCode: 0,
			args:    []string{"policy", "check", "--policy", "no-privileged", "-f", manifest},
			wantOut: []string{"1 objects checked, 0 violations would be denied"}},
		{name: "attest-full missing", bin: alone, wantCode: 1, args: []string{"serve"},
			wantErr: "this command needs the full build of attest, " + filepath.Join(filepath.Dir(alone), "attest-full") + ", which is not installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.bin, tt.args...)
			cmd.Env = append(os.Environ(), "ATTEST_FULL_BINARY="+tt.full)
			if tt.full == "" {
				cmd.Env = append(os.Environ(), "ATTEST_FULL_BINARY=")
			}
			cmd.Stdin = strings.NewReader(tt.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", want, stdout.String(), stderr.String())
				}
			}
			if tt.notOutput != "" && strings.Contains(stdout.String(), tt.notOutput) {
				t.Errorf("stdout has %q: it ran attest-full:\n%s", tt.notOutput, stdout.String())
			}
			if tt.wantErr != "" && !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, stderr.String())
			}
		})
	}
}
