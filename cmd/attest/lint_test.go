package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestLint: fixtures with known answers; the library itself is clean; optimize shows the hot-path finding with
// the policy's measured time.
func TestLint(t *testing.T) {
	const dir = "testdata/lint"
	cases := []struct {
		name    string
		args    []string
		code    int
		want    []string // file:line check policy
		profile bool
	}{
		{name: "the library", args: []string{"policy", "lint"}, code: 0},
		{name: "fixtures", args: []string{"policy", "lint", dir}, code: 1, want: []string{
			dir + "/no-description.rego:1 missing-description team-label",
			dir + "/no-description.rego:10 message-without-fix team-label",
			dir + "/no-metadata.rego:1 missing-metadata company.no_metadata",
			dir + "/no-metadata.rego:3 message-without-fix company.no_metadata",
			dir + "/slow.rego:13 work-before-conditions slow-replicas",
		}},
		{name: "a clean policy: a key built for a later condition is needed work", args: []string{"policy", "lint", dir + "/good.rego"}, code: 0},
		{name: "optimize: hot-path suggestions with the measured time", args: []string{"policy", "optimize", dir, "--suggestions", "-f", "testdata/generate/manifests", "--config", "testdata/policies.yaml"}, code: 1,
			want: []string{dir + "/slow.rego:13 work-before-conditions slow-replicas"}, profile: true},
		{name: "optimize without manifests: suggestions alone", args: []string{"policy", "optimize", dir, "--suggestions"}, code: 1,
			want: []string{dir + "/slow.rego:13 work-before-conditions slow-replicas"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(c.args, "--format", "json")...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, out, errOut)
			}
			var report lintReport
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range report.Findings {
				got = append(got, fmt.Sprintf("%s:%d %s %s", f.File, f.Line, f.Check, f.Policy))
				if c.profile != (f.Profile != nil) || (f.Profile != nil && (f.Profile.Evaluations != 2 || f.Profile.MeanNs <= 0)) {
					t.Fatalf("profile %+v (want one: %v)", f.Profile, c.profile)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"policy", "optimize", dir}, "optimize only suggests: pass --suggestions"},
		{[]string{"policy", "lint", dir + "/nope.rego"}, "no such file"},
		{[]string{"policy", "lint", "--format", "xml"}, "--format"},
	} {
		if _, errOut, code := attest(t, "", c.args...); code != 2 || !strings.Contains(errOut, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", c.args, code, errOut, c.stderr)
		}
	}
}
