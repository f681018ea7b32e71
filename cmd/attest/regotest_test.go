package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyTest(t *testing.T) {
	dir := t.TempDir()
	cases := []cliCase{
		{"embedded library passes", nil, 0, []string{"PASS data.attest.library.no_privileged_test.", "\nPASS: "}, ""},
		{"directory passes", []string{"testdata/rego/pass"}, 0, []string{"PASS data.custom.two_replicas_test.test_one_replica_denied (testdata/rego/pass/replicas_test.rego:7)", "PASS: 2/2\n"}, ""},
		{"files as arguments", []string{"testdata/rego/pass/replicas.rego", "testdata/rego/pass/replicas_test.rego"}, 0, []string{"PASS: 2/2\n"}, ""},
		{"failing test exits 1", []string{"testdata/rego/fail"}, 1, []string{"FAIL data.custom.two_replicas_test.test_two_replicas_denied (testdata/rego/fail/replicas_test.rego:12)", "FAIL: 2/3\n"}, ""},
		{"impure built-in does not compile", []string{"testdata/rego/impure"}, 2, nil, "testdata/rego/impure/clock.rego:6: rego_compile_error: time.now_ns is not allowed in ATTEST policies"},
		{"syntax error names file and line", []string{"testdata/rego/broken"}, 2, nil, "testdata/rego/broken/syntax.rego:6: rego_parse_error: non-terminated string"},
		{"no tests", []string{"testdata/rego/pass/replicas.rego"}, 2, nil, "no Rego tests (*_test.rego) or Cedar test files (*_test.yaml) found in testdata/rego/pass/replicas.rego"},
		{"not rego", []string{"testdata/policies.yaml"}, 2, nil, "testdata/policies.yaml: not a .rego file"},
		{"missing path", []string{filepath.Join(dir, "nope")}, 2, nil, "no such file or directory"},
		{"bad format", []string{"--format", "tap"}, 2, nil, "--format must be text or json"},
	}
	runCLICases(t, []string{"policy", "test"}, cases)
}

func TestPolicyTestGolden(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := attest(t, "", "policy", "test", "testdata/rego/fail", "--format", format)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, errOut)
			}
			golden(t, "test-fail.golden."+format, out)
		})
	}
}

// TestPolicyTestCountsLibrary checks that every test of the embedded library runs and passes through the CLI.
func TestPolicyTestCountsLibrary(t *testing.T) {
	out, errOut, code := attest(t, "", "policy", "test", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r testReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.Passed < 50 || len(r.Tests) != r.Passed {
		t.Fatalf("passed %d, failed %d, listed %d", r.Passed, r.Failed, len(r.Tests))
	}
	files := map[string]bool{}
	for _, tr := range r.Tests {
		files[tr.File] = true
		if !strings.HasPrefix(tr.Test, "data.") || tr.Line == 0 {
			t.Errorf("test %+v lacks its name or line", tr)
		}
	}
	if len(files) < 10 {
		t.Errorf("tests from %d files, want every library policy's", len(files))
	}
}
