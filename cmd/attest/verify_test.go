//go:build !lean

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	suites := filepath.Join("..", "..", "policies", "gatekeeper", "testdata")
	failing := filepath.Join("..", "..", "policies", "gatekeeper", "verify", "testdata", "failing")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"recursive", []string{suites + "/..."}, 0,
			"ok\t../../policies/gatekeeper/testdata/allowedregistries/suite.yaml\t0.000s\n" +
				"ok\t../../policies/gatekeeper/testdata/expansion/suite.yaml\t0.000s\n" +
				"ok\t../../policies/gatekeeper/testdata/namespaceowner/suite.yaml\t0.000s\n" +
				"ok\t../../policies/gatekeeper/testdata/requiredlabels/suite.yaml\t0.000s\nPASS\n", ""},
		{"one suite file", []string{filepath.Join(suites, "requiredlabels", "suite.yaml")}, 0,
			"ok\t../../policies/gatekeeper/testdata/requiredlabels/suite.yaml\t0.000s\nPASS\n", ""},
		{"several paths", []string{filepath.Join(suites, "requiredlabels"), filepath.Join(suites, "namespaceowner", "suite.yaml")}, 0,
			"ok\t../../policies/gatekeeper/testdata/requiredlabels/suite.yaml\t0.000s\n" +
				"ok\t../../policies/gatekeeper/testdata/namespaceowner/suite.yaml\t0.000s\nPASS\n", ""},
		{"verbose", []string{"-v", "--run", "workloads-have-owner//^labelled-pod$", filepath.Join(suites, "requiredlabels")}, 0,
			"=== RUN   workloads-have-owner\n    === RUN   labelled-pod\n    --- PASS: labelled-pod\t(0.000s)\n", ""},
		{"failures", []string{failing}, 1, "    --- FAIL: count\t(0.000s)\n        unexpected number of violations: got 1 violations but want exactly 2", ""},
		{"failure names the file", []string{failing}, 1, "FAIL\t../../policies/gatekeeper/verify/testdata/failing/suite.yaml\t0.000s\nFAIL\n", ""},
		{"directory without suites", []string{filepath.Join(suites, "broken")}, 2, "", "no test suites"},
		{"missing path", []string{filepath.Join(suites, "nope") + "/..."}, 2, "", "no such file or directory"},
		{"without CEL a CEL-only template is not added", []string{"--enable-k8s-native-validation=false", filepath.Join(suites, "allowedregistries")}, 1,
			"--- FAIL: company-registries", ""},
		{"bad filter", []string{"--run", "a//b//c", suites}, 2, "", `at most one "//"`},
		{"no arguments", nil, 2, "", "requires at least 1 arg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attestWith(t, nil, append([]string{"policy", "verify"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nwant %q\nstderr:\n%s\nwant %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}
