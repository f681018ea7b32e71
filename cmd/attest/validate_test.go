package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"valid v1 policy", []string{"testdata/rego/pass"}, 0, "1 policy valid: two-replicas\n", ""},
		{"policy documents' v0 layout", []string{"testdata/rego/v0/security.rego"}, 0, "1 policy valid: security\n", ""},
		{"several paths", []string{"testdata/rego/pass", "testdata/rego/v0"}, 0, "2 policies valid: security, two-replicas\n", ""},
		{"parse error with line", []string{"testdata/rego/broken"}, 1, "testdata/rego/broken/syntax.rego:6: rego_parse_error: non-terminated string", "2 problems: the policies would be refused"},
		{"impure built-in named", []string{"testdata/rego/invalid/network.rego"}, 1, "testdata/rego/invalid/network.rego:8: rego_compile_error: http.send is not allowed in ATTEST policies", ""},
		{"clash with the library", []string{"--with-library", "testdata/rego/pass", filepath.Join("..", "..", "policies", "library", "security", "no-privileged.rego")}, 1, `policies/library/security/no-privileged.rego:15: policy name "no-privileged" is already used by library/security/no-privileged.rego`, ""},
		{"custom policy beside the library", []string{"--with-library", "testdata/rego/pass"}, 0, "1 policy valid: two-replicas\n", ""},
		{"no policies", []string{"testdata/rego/pass/replicas_test.rego"}, 2, "", "no policies (*.rego other than *_test.rego, or *.cedar) found"},
		{"no arguments", nil, 2, "", "requires at least 1 arg"},
		{"missing path", []string{"testdata/rego/nope"}, 2, "", "no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append([]string{"policy", "validate"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nwant %q\nstderr:\n%s\nwant %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}

// TestValidateReportsEveryFile: problems of different stages (METADATA, purity, missing rules, type errors) in
// different files are all reported in one run, each with its file and line.
func TestValidateReportsEveryFile(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := attest(t, "", "policy", "validate", "testdata/rego/invalid", "--format", format)
			if code != 1 || !strings.Contains(errOut, "4 problems") {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			golden(t, "validate-invalid.golden."+format, out)
			if format == "json" {
				var r validateReport
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatal(err)
				}
				for _, p := range r.Problems {
					if p.File == "" || p.Line == 0 {
						t.Errorf("problem without location: %+v", p)
					}
				}
			}
		})
	}
}
