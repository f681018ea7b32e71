package verify_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/continuums/attest/policies/gatekeeper/verify"
)

// run reads the suites under target (a path below policies/gatekeeper) and runs them on a stopped clock.
func run(t *testing.T, target string, recursive bool, filter string) (string, bool) {
	t.Helper()
	fsys := os.DirFS("..")
	suites, err := verify.ReadSuites(fsys, target, target+"/", recursive)
	if err != nil {
		t.Fatal(err)
	}
	f, err := verify.NewFilter(filter)
	if err != nil {
		t.Fatal(err)
	}
	r := &verify.Runner{FS: fsys, Filter: f, Clock: clocktesting.NewFakePassiveClock(time.Unix(0, 0))}
	var results []verify.SuiteResult
	for _, s := range suites {
		results = append(results, r.Run(context.Background(), s))
	}
	var out bytes.Buffer
	failed, err := verify.Print(&out, results, false)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), failed
}

func TestOurSuitesPass(t *testing.T) {
	got, failed := run(t, "testdata", true, "")
	want := "ok\ttestdata/allowedregistries/suite.yaml\t0.000s\nok\ttestdata/expansion/suite.yaml\t0.000s\n" +
		"ok\ttestdata/namespaceowner/suite.yaml\t0.000s\n" +
		"ok\ttestdata/requiredlabels/suite.yaml\t0.000s\n" +
		"PASS\n"
	if failed || got != want {
		t.Errorf("failed %v, output:\n%s\nwant:\n%s", failed, got, want)
	}
}

// TestFailures checks the report of each kind of failure, word for word as gator verify prints it.
func TestFailures(t *testing.T) {
	got, failed := run(t, "verify/testdata", true, "")
	want := `    --- FAIL: count	(0.000s)
        unexpected number of violations: got 1 violations but want exactly 2: got messages [Pod web must have the labels {"app", "owner"}]
    --- FAIL: message	(0.000s)
        unexpected number of violations: got 0 violations containing "^must have" but want at least 1: got messages [Pod web must have the labels {"app", "owner"}]
    --- FAIL: none-expected	(0.000s)
        unexpected number of violations: got 1 violations but want none: got messages [Pod web must have the labels {"app", "owner"}]
    --- FAIL: bad-regex	(0.000s)
        message contains invalid regular expression: error parsing regexp: missing closing ): ` + "`(unclosed`" + `
    --- FAIL: bad-violations	(0.000s)
        invalid yaml: assertion.violation, if set, must be a nonnegative integer, "yes", or "no": got messages [Pod web must have the labels {"app", "owner"}]
    --- FAIL: no-assertions	(0.000s)
        invalid Case: assertions must be non-empty
    --- FAIL: two-objects	(0.000s)
        object file must contain exactly one object: "verify/testdata/failing/two-objects.yaml" defines 2 objects
--- FAIL: wrong-expectations	(0.000s)
--- FAIL: valid-constraint-expected-invalid	(0.000s)
  constraint should have failed schema validation: got no error but want schema validation failed
--- FAIL: broken-template	(0.000s)
  adding template: template attestbrokenrego: invalid ConstraintTemplate: 1 error occurred: template:6: rego_parse_error: unexpected eof token
	  msg := "host network"
	                      ^
--- FAIL: broken-expansion	(0.000s)
  adding ExpansionTemplate: path "verify/testdata/failing/expands-into-itself.yaml": ExpansionTemplate pods-into-pods generates GVK /v1, Kind=Pod, but also applies to that same GVK
FAIL	verify/testdata/failing/suite.yaml	0.000s
ok	verify/testdata/skipped/suite.yaml	0.000s
FAIL
`
	if !failed || got != want {
		t.Errorf("failed %v, output:\n%s\nwant:\n%s", failed, got, want)
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		filter, want string
		failed       bool
	}{
		{"wrong-expectations//^passes$", "ok\tverify/testdata/failing/suite.yaml\t0.000s\nok\tverify/testdata/skipped/suite.yaml\t0.000s\nPASS\n", false},
		{"^count$", "    --- FAIL: count\t(0.000s)\n", true},
		{"^broken-template$", "--- FAIL: broken-template\t(0.000s)\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got, failed := run(t, "verify/testdata", true, tt.filter)
			if failed != tt.failed || !strings.HasPrefix(got, tt.want) {
				t.Errorf("failed %v, output:\n%s\nwant it to start with:\n%s", failed, got, tt.want)
			}
		})
	}
	if _, err := verify.NewFilter("a//b//c"); !errors.Is(err, verify.ErrInvalidFilter) {
		t.Errorf("NewFilter(a//b//c) err = %v", err)
	}
	if _, err := verify.NewFilter("(x"); !errors.Is(err, verify.ErrInvalidFilter) {
		t.Errorf("NewFilter((x) err = %v", err)
	}
}

func TestReadSuites(t *testing.T) {
	fsys := os.DirFS("..")
	tests := []struct {
		name, target string
		recursive    bool
		want         []string
		err          error
	}{
		{name: "file", target: "testdata/requiredlabels/suite.yaml", want: []string{"testdata/requiredlabels/suite.yaml"}},
		{name: "directory: its files only", target: "testdata", want: nil},
		{name: "directory: its files, non-suites skipped", target: "verify/testdata/failing", want: []string{"verify/testdata/failing/suite.yaml"}},
		{name: "recursive", target: "testdata", recursive: true, want: []string{
			"testdata/allowedregistries/suite.yaml", "testdata/expansion/suite.yaml", "testdata/namespaceowner/suite.yaml", "testdata/requiredlabels/suite.yaml"}},
		{name: "recursive on a file", target: "testdata/requiredlabels/suite.yaml", recursive: true, err: verify.ErrNotADirectory},
		{name: "not yaml", target: "verify/suite.go", err: verify.ErrUnsupportedExtension},
		{name: "missing", target: "testdata/nothing", err: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			suites, err := verify.ReadSuites(fsys, tt.target, tt.target, tt.recursive)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range suites {
				got = append(got, s.Path)
				if s.Name != s.Path {
					t.Errorf("suite %s named %s", s.Path, s.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("suites %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssertion(t *testing.T) {
	num := func(i int) *intstr.IntOrString { v := intstr.FromInt32(int32(i)); return &v }
	str := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	msg := func(s string) *string { return &s }
	two := []string{"image nginx:latest uses the latest tag", "container app is privileged"}
	tests := []struct {
		name       string
		a          verify.Assertion
		messages   []string
		err        error
		errMessage string
	}{
		{name: "default is yes", a: verify.Assertion{}, messages: two},
		{name: "default yes with none", a: verify.Assertion{}, messages: nil, err: verify.ErrNumViolations,
			errMessage: "unexpected number of violations: got 0 violations but want at least 1: got messages []"},
		{name: "no", a: verify.Assertion{Violations: str("no")}, messages: nil},
		{name: "no with some", a: verify.Assertion{Violations: str("no")}, messages: two, err: verify.ErrNumViolations},
		{name: "exact count", a: verify.Assertion{Violations: num(2)}, messages: two},
		{name: "zero", a: verify.Assertion{Violations: num(0)}, messages: nil},
		{name: "count of matching messages", a: verify.Assertion{Violations: num(1), Message: msg("privileged")}, messages: two},
		{name: "wrong count of matching", a: verify.Assertion{Violations: num(2), Message: msg("latest")}, messages: two, err: verify.ErrNumViolations,
			errMessage: `unexpected number of violations: got 1 violations containing "latest" but want exactly 2: got messages [image nginx:latest uses the latest tag container app is privileged]`},
		{name: "no matching message", a: verify.Assertion{Violations: str("no"), Message: msg("hostPath")}, messages: two},
		{name: "negative count", a: verify.Assertion{Violations: num(-1)}, messages: two, err: verify.ErrInvalidYAML},
		{name: "other string", a: verify.Assertion{Violations: str("some")}, messages: two, err: verify.ErrInvalidYAML},
		{name: "bad regex", a: verify.Assertion{Message: msg("[")}, messages: two, err: verify.ErrInvalidRegex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Check(tt.messages)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.errMessage != "" && err.Error() != tt.errMessage {
				t.Errorf("error\n%s\nwant\n%s", err, tt.errMessage)
			}
		})
	}
}

func TestVerbose(t *testing.T) {
	results := []verify.SuiteResult{{Name: "s.yaml", Tests: []verify.TestResult{
		{Name: "t", Cases: []verify.CaseResult{{Name: "c", Print: "one\ntwo\n"}, {Name: "skipped", Skipped: true}}},
		{Name: "skipped-test", Skipped: true},
	}}}
	var out bytes.Buffer
	if _, err := verify.Print(&out, results, true); err != nil {
		t.Fatal(err)
	}
	want := "=== RUN   t\n    === RUN   c\n        === PRINT ===\n        one\n        two\n    --- PASS: c\t(0.000s)\n" +
		"    === SKIP  skipped\n--- PASS: t\t(0.000s)\n=== SKIP  skipped-test\nok\ts.yaml\t0.000s\nPASS\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
