package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain keeps the developer's own ~/.config/attest/policies.yaml (and $XDG_CONFIG_HOME) out of the tests that
// run the CLI as main wires it.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "attest-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = os.Setenv("HOME", home)
	_ = os.Unsetenv("XDG_CONFIG_HOME")
	code := m.Run()
	_ = os.RemoveAll(home)
	os.Exit(code)
}

// configTree is a home directory and a git project with a subdirectory to run in.
type configTree struct {
	home, project, workDir string
	env                    map[string]string
}

func newConfigTree(t *testing.T) *configTree {
	t.Helper()
	root := t.TempDir()
	ct := &configTree{home: filepath.Join(root, "home"), project: filepath.Join(root, "src", "shop"), env: map[string]string{}}
	ct.workDir = filepath.Join(ct.project, "deploy", "prod")
	for _, d := range []string{ct.home, filepath.Join(ct.project, ".git"), ct.workDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return ct
}

func (ct *configTree) write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the CLI in the tree's working directory with its home and environment.
func (ct *configTree) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		workDir: func() (string, error) { return ct.workDir, nil },
		homeDir: func() (string, error) { return ct.home, nil },
		getenv:  func(k string) string { return ct.env[k] }}
	code := runApp(context.Background(), args, a)
	return out.String(), errOut.String(), code
}

const (
	// The global settings file: a custom policy, strict no-privileged, and a bundle URL (a policy source).
	globalConfig = `policy:
  enabled: true
  fail_on_violation: true
  policy_bundle_url: "policies.company.com/attest/bundle:prod"
  custom_policies:
    - name: "require-team-label"
      description: "All workloads must carry a team label"
      level: "organization"
      severity: "high"
      rego_code: |
        package attest.custom.team_label

        violation[{"msg": msg}] {
          not input.resource.metadata.labels.team
          msg := "workloads must carry a team label"
        }
policies:
  - name: no-privileged
    enforcement: strict
`
	// The project's policies.yaml overrides no-privileged only; the custom policy stays the global file's.
	projectConfig = `policies:
  - name: no-privileged
    enforcement: warn
`
	projectGovernance = `governance:
  exemption_approval:
    required_approvers: 2
    required_teams: ["security-team"]
    max_duration: "30d"
`
	privilegedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      containers:
        - name: exporter
          image: docker.io/library/nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000
          securityContext: {privileged: true}
`
)

func TestCheckFindsConfigFiles(t *testing.T) {
	ct := newConfigTree(t)
	manifest := ct.write(t, filepath.Join(ct.workDir, "exporter.yaml"), privilegedDeployment)
	args := []string{"policy", "check", "--offline", "--policy", "no-privileged", "--policy", "require-team-label", "-f", manifest}
	global := filepath.Join(ct.home, ".config", "attest", "policies.yaml")
	projectPolicies := filepath.Join(ct.project, ".attest", "policies.yaml")
	projectGov := filepath.Join(ct.project, ".attest", "governance.yaml")

	// No files: the library's defaults, and the custom policy does not exist.
	_, errOut, code := ct.run(t, args...)
	if code != 2 || !strings.Contains(errOut, `--policy: unknown policy "require-team-label"`) {
		t.Fatalf("without config files: exit %d, stderr %s", code, errOut)
	}

	// The global file alone: its custom policy and its strict no-privileged deny.
	ct.write(t, global, globalConfig)
	out, errOut, code := ct.run(t, args...)
	if code != 1 {
		t.Fatalf("global file: exit %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{"DENY Deployment monitoring/node-exporter: [no-privileged]", "DENY Deployment monitoring/node-exporter: [require-team-label]: workloads must carry a team label"} {
		if !strings.Contains(out, want) {
			t.Errorf("global file: stdout lacks %q:\n%s", want, out)
		}
	}
	if want := "config: ~/.config/attest/policies.yaml\n"; !strings.Contains(errOut, want) {
		t.Errorf("global file: stderr lacks %q:\n%s", want, errOut)
	}
	if want := "note: policy source policy-bundle-url (policies.company.com/attest/bundle:prod) is loaded by `attest serve`, not by this command"; !strings.Contains(errOut, want) {
		t.Errorf("global file: stderr lacks %q:\n%s", want, errOut)
	}

	// The project's files, found from a subdirectory, override the global file key by key: no-privileged warns,
	// the custom policy still denies.
	ct.write(t, projectPolicies, projectConfig)
	ct.write(t, projectGov, projectGovernance)
	out, errOut, code = ct.run(t, args...)
	if code != 1 {
		t.Fatalf("project files: exit %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{"WARN Deployment monitoring/node-exporter: [no-privileged]", "DENY Deployment monitoring/node-exporter: [require-team-label]"} {
		if !strings.Contains(out, want) {
			t.Errorf("project files: stdout lacks %q:\n%s", want, out)
		}
	}
	wantFiles := "config: " + projectPolicies + ", " + projectGov + ", ~/.config/attest/policies.yaml\n"
	if !strings.Contains(errOut, wantFiles) {
		t.Errorf("project files: stderr lacks %q:\n%s", wantFiles, errOut)
	}

	// XDG_CONFIG_HOME moves the global file; the one under ~/.config is then not read.
	xdg := filepath.Join(ct.home, "xdg")
	ct.env["XDG_CONFIG_HOME"] = xdg
	ct.write(t, filepath.Join(xdg, "attest", "policies.yaml"), "policy:\n  fail_on_violation: false\n")
	_, errOut, _ = ct.run(t, "policy", "check", "--offline", "-f", manifest)
	if want := "config: " + projectPolicies + ", " + projectGov + ", ~/xdg/attest/policies.yaml\n"; !strings.Contains(errOut, want) {
		t.Errorf("XDG_CONFIG_HOME: stderr lacks %q:\n%s", want, errOut)
	}

	// --config is read alone (the global file's custom policy is then unknown), and no file list is printed.
	_, errOut, code = ct.run(t, "policy", "check", "--offline", "--config", projectPolicies, "--policy", "require-team-label", "-f", manifest)
	if code != 2 || !strings.Contains(errOut, `unknown policy "require-team-label"`) || strings.Contains(errOut, "config: ") {
		t.Errorf("--config: exit %d, stderr %s", code, errOut)
	}
}

func TestCheckStopsAtTheRepositoryRoot(t *testing.T) {
	ct := newConfigTree(t)
	// A .attest above the repository belongs to another project.
	ct.write(t, filepath.Join(filepath.Dir(ct.project), ".attest", "policies.yaml"), "policy:\n  enabled: false\n")
	manifest := ct.write(t, filepath.Join(ct.workDir, "exporter.yaml"), privilegedDeployment)
	out, errOut, code := ct.run(t, "policy", "check", "--offline", "-f", manifest)
	if code != 1 || !strings.Contains(out, "DENY Deployment monitoring/node-exporter: [no-privileged]") {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "config: none found") {
		t.Errorf("stderr lacks the empty file list:\n%s", errOut)
	}
}

func TestCheckConfigExemptionList(t *testing.T) {
	ct := newConfigTree(t)
	manifest := ct.write(t, filepath.Join(ct.workDir, "exporter.yaml"), privilegedDeployment)
	// Loading judges expires_at against the wall clock (at most 30 days ahead); --now judges the request.
	expires := time.Now().UTC().Add(10 * 24 * time.Hour).Truncate(time.Hour)
	ct.write(t, filepath.Join(ct.project, ".attest", "policies.yaml"), fmt.Sprintf(`exemptions:
  - policy_name: "no-privileged"
    resource_kind: "Deployment"
    resource_name: "node-exporter"
    resource_namespace: "monitoring"
    reason: "Node metrics need host access until the v3 exporter ships"
    expires_at: "%s"
    approved_by: "security-team-lead"
`, expires.Format(time.RFC3339)))
	check := func(now time.Time) (string, int) {
		out, errOut, code := ct.run(t, "policy", "check", "--offline", "--policy", "no-privileged", "--now", now.Format(time.RFC3339), "-f", manifest)
		if code == 2 {
			t.Fatalf("exit 2: %s", errOut)
		}
		return out, code
	}
	out, code := check(expires.Add(-time.Minute))
	want := "EXEMPT Deployment monitoring/node-exporter: [no-privileged] spec.template.spec.containers[0] (exporter): privileged containers are not allowed"
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "(exempted by config exemptions[0], approved by security-team-lead, expires "+expires.Format(time.RFC3339)+")") {
		t.Errorf("before expires_at: exit %d, stdout:\n%s", code, out)
	}
	out, code = check(expires)
	if code != 1 || !strings.Contains(out, "DENY Deployment monitoring/node-exporter: [no-privileged]") {
		t.Errorf("at expires_at: exit %d, stdout:\n%s", code, out)
	}

	// An expiry beyond the governance maximum is refused at load, naming the file and the field.
	path := ct.write(t, filepath.Join(ct.project, ".attest", "governance.yaml"), "governance:\n  exemption_approval:\n    max_duration: 7d\n")
	_, errOut, code := ct.run(t, "policy", "check", "--offline", "-f", manifest)
	if want := "error: config " + filepath.Join(ct.project, ".attest", "policies.yaml") + ": exemptions[0].expires_at: " + expires.Format(time.RFC3339) + " is beyond the maximum of 7 days from now"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("beyond the maximum (%s): exit %d, stderr %s\nwant %s", path, code, errOut, want)
	}
}
