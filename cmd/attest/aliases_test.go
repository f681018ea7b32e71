package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestDocumentAliases: the policy documents' command names behave as the commands they stand for.
func TestDocumentAliases(t *testing.T) {
	dir := t.TempDir()
	deploy := filepath.Join(dir, "deploy.yaml")
	firstRun := filepath.Join(dir, "first-run.yaml")
	for f, body := range map[string]string{deploy: firstRunDeployment, firstRun: firstRunConfigs["first run"]} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	privileged := "testdata/mixed/deployment-privileged.yaml"
	cases := []cliCase{
		// check --strict: a warning alone fails the check; without --strict it does not.
		{"warning passes without --strict", []string{"policy", "check", "-f", deploy, "--config", firstRun}, 0, []string{"0 violations would be denied, 4 warnings"}, ""},
		{"warning fails with --strict", []string{"policy", "check", "-f", deploy, "--config", firstRun, "--strict"}, 1, []string{"0 violations would be denied, 4 warnings"}, ""},
		{"denial fails with --strict too", []string{"policy", "check", "-f", privileged, "--policy", "no-privileged", "--strict"}, 1, []string{"would be denied"}, ""},
		// scan: check whose report is SARIF unless --format says otherwise; same exit codes.
		{"scan writes SARIF", []string{"policy", "scan", "-f", privileged, "--policy", "no-privileged"}, 1, []string{`"version": "2.1.0"`, `"ruleId": "no-privileged"`}, ""},
		{"scan with --format json", []string{"policy", "scan", "-f", privileged, "--policy", "no-privileged", "--format", "json"}, 1, []string{`"policy": "no-privileged"`}, ""},
		{"scan refuses a bad format as check does", []string{"policy", "scan", "-f", privileged, "--format", "tap"}, 2, nil, "--format must be"},
		// test NAME --resource F: check --policy NAME -f F.
		{"test --resource denies", []string{"policy", "test", "no-privileged", "--resource", privileged}, 1, []string{"[no-privileged]", "would be denied"}, ""},
		{"test --resource passes", []string{"policy", "test", "disallow-latest-tag", "--resource", privileged}, 0, []string{"0 violations would be denied"}, ""},
		{"test --resource unknown policy", []string{"policy", "test", "no-such-policy", "--resource", privileged}, 2, nil, "no-such-policy"},
		{"test --resource needs one name", []string{"policy", "test", "a", "b", "--resource", privileged}, 2, nil, "--resource tests one policy"},
		// test-all: the library's tests and PATH's, together.
		{"test-all with passing tests", []string{"policy", "test-all", "testdata/rego/pass"}, 0, []string{"PASS data.attest.library.no_privileged_test.", "PASS data.custom.two_replicas_test.test_one_replica_denied"}, ""},
		{"test-all with a failing test", []string{"policy", "test-all", "testdata/rego/fail"}, 1, []string{"FAIL data.custom.two_replicas_test.test_two_replicas_denied", "PASS data.attest.library.no_privileged_test."}, ""},
		{"test-all broken Rego", []string{"policy", "test-all", "testdata/rego/broken"}, 2, nil, "testdata/rego/broken/syntax.rego:6: rego_parse_error"},
	}
	runCLICases(t, nil, cases)
}

// TestTestAllCountsBoth: test-all's JSON report holds the library's tests and the directory's, all run.
func TestTestAllCountsBoth(t *testing.T) {
	lib, _, code := attest(t, "", "policy", "test", "--format", "json")
	if code != 0 {
		t.Fatalf("policy test: exit %d", code)
	}
	all, errOut, code := attest(t, "", "policy", "test-all", "testdata/rego/pass", "--format", "json")
	if code != 0 {
		t.Fatalf("test-all: exit %d: %s", code, errOut)
	}
	var l, a testReport
	if err := json.Unmarshal([]byte(lib), &l); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(all), &a); err != nil {
		t.Fatal(err)
	}
	if a.Passed != l.Passed+2 || a.Failed != 0 {
		t.Fatalf("test-all passed %d failed %d; the library alone passes %d, the directory 2", a.Passed, a.Failed, l.Passed)
	}
}
