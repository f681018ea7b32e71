package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateTests: snapshot tests of fixtures with known answers: the files name each object's test and assert
// exactly what the policy reports, `attest policy test` passes on them, and fails once the policy changes.
func TestGenerateTests(t *testing.T) {
	const (
		policyDir = "testdata/generate/policies"
		manifests = "testdata/generate/manifests"
		now       = "2026-12-01T00:00:00Z"
	)
	cases := []struct {
		name     string
		policy   []string
		output   string // relative to a temporary directory
		files    map[string]int
		contains map[string][]string // file → text it must hold
		test     []string            // attest policy test arguments (after the files)
	}{
		{name: "a policy file", policy: []string{policyDir + "/min-replicas.rego"}, output: "min_test.rego",
			files: map[string]int{"min_test.rego": 2},
			contains: map[string][]string{"min_test.rego": {
				"package company.min_replicas_test", "import data.company.min_replicas as policy",
				"# testdata/generate/manifests/deployments.yaml:1: CREATE Deployment shop/single\n# denies: [min-replicas] spec.replicas: 1 replica(s) is too few; set spec.replicas to 2 or more\ntest_deployment_shop_single if {",
				"\tpolicy.violation == {\n\t\t{\"message\": \"1 replica(s) is too few\", \"path\": \"spec.replicas\"},\n\t}",
				"# testdata/generate/manifests/deployments.yaml:13: CREATE Deployment shop/triple\ntest_deployment_shop_triple if {",
				"\tpolicy.violation == set() with input as doc",
			}},
			test: []string{policyDir + "/min-replicas.rego"}},
		{name: "a directory of two policies, v0 and v1: one file each", policy: []string{policyDir}, output: "snapshots",
			files: map[string]int{"snapshots/min-replicas_snapshot_test.rego": 2, "snapshots/team-label_snapshot_test.rego": 2},
			contains: map[string][]string{"snapshots/team-label_snapshot_test.rego": {
				"package company.team_label_test",
				"# warns: [team-label]: Deployment triple has no team label\n",
				"\tpolicy.deny == {\n\t\t\"Deployment triple has no team label\",\n\t}",
				"\tpolicy.deny == set() with input as doc",
			}},
			test: []string{policyDir}},
		{name: "a library policy by name", policy: []string{"no-privileged"}, output: "np_test.rego",
			files: map[string]int{"np_test.rego": 2},
			contains: map[string][]string{"np_test.rego": {
				"package attest.library.no_privileged_test",
				"# denies: [no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException\n",
				`{"message": "privileged containers are not allowed", "path": "spec.template.spec.containers[0]"},`,
			}},
			test: []string{"--with-library"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"policy", "generate-tests", "--input", manifests, "--output", filepath.Join(dir, c.output), "--now", now, "--format", "json", "--config", "testdata/policies.yaml"}
			for _, p := range c.policy {
				args = append(args, "--policy", p)
			}
			out, errOut, code := attest(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			var report generateReport
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, f := range report.Files {
				rel, _ := filepath.Rel(dir, f.File)
				got[rel] = f.Tests
				if f.Passed != f.Tests {
					t.Fatalf("%s: %d of %d pass", rel, f.Passed, f.Tests)
				}
			}
			if len(got) != len(c.files) {
				t.Fatalf("files %v, want %v", got, c.files)
			}
			for f, n := range c.files {
				if got[f] != n {
					t.Fatalf("files %v, want %v", got, c.files)
				}
			}
			var written []string
			for f := range c.files {
				text, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range c.contains[f] {
					if !strings.Contains(string(text), want) {
						t.Errorf("%s lacks %q:\n%s", f, want, text)
					}
				}
				written = append(written, filepath.Join(dir, f))
			}
			testOut, testErr, code := attest(t, "", append(append([]string{"policy", "test"}, c.test...), written...)...)
			if code != 0 || !strings.Contains(testOut, "PASS: ") {
				t.Fatalf("attest policy test: exit %d\n%s%s", code, testOut, testErr)
			}
		})
	}
}

// TestGenerateTestsHoldThePolicy: once the policy changes its verdict, `attest policy test` fails the snapshot
// of the object it now judges differently, and only that one.
func TestGenerateTestsHoldThePolicy(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/generate/policies/min-replicas.rego")
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "min-replicas.rego")
	if err := os.WriteFile(pol, src, 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "min-replicas_snapshot_test.rego")
	if _, errOut, code := attest(t, "", "policy", "generate-tests", "--policy", pol, "--input", "testdata/generate/manifests", "-o", snap, "--now", "2026-12-01T00:00:00Z"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(pol, []byte(strings.Replace(string(src), "r < 2", "r < 4", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := attest(t, "", "policy", "test", dir, "--format", "json")
	var report testReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if code != 1 || report.Passed != 1 || report.Failed != 1 || report.Tests[0].Test+report.Tests[1].Test == "" {
		t.Fatalf("exit %d, report %+v", code, report)
	}
	for _, r := range report.Tests {
		if !r.Pass && !strings.HasSuffix(r.Test, "test_deployment_shop_triple") {
			t.Fatalf("the wrong snapshot fails: %+v", r)
		}
	}
}

func TestGenerateTestsUsage(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no output", []string{"--policy", "no-privileged", "--input", "testdata/generate/manifests"}, "--policy, --input and --output are required"},
		{"neither a file nor a library policy", []string{"--policy", "no-such-policy", "--input", "testdata/generate/manifests", "-o", "x_test.rego"}, "--policy: no-such-policy is neither a file nor a library policy"},
		{"a directory without policies", []string{"--policy", "testdata/generate/manifests", "--input", "testdata/generate/manifests", "-o", "x_test.rego"}, "--policy: no policy"},
		{"no objects", []string{"--policy", "no-privileged", "--input", "testdata/generate/policies", "-o", "x_test.rego"}, "--input: no object to test"},
		{"bad format", []string{"--policy", "no-privileged", "--input", "testdata/generate/manifests", "-o", "x_test.rego", "--format", "xml"}, "--format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := attest(t, "", append([]string{"policy", "generate-tests"}, c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errOut, c.stderr)
			}
		})
	}
}
