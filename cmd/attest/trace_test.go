package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
)

// TestTraceSeesWhatTheEngineSees traces every library policy on every fixture object, as several users, and
// checks that the traced evaluation finds exactly as much as the engine: the tracer's input document is the
// webhook's, so its explanation is about the decision the webhook makes.
func TestTraceSeesWhatTheEngineSees(t *testing.T) {
	ctx := context.Background()
	engine, err := compileLibrary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("testdata/policies.yaml", engine)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := manifest.Collect([]string{"testdata/mixed", "testdata/json", "testdata/exemptions/annotations", "testdata/exemptions/cluster"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, "2026-11-25T03:00:00Z")
	traced, found := 0, 0
	for _, p := range engine.Policies() {
		tracer, err := newPolicyTracer(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range sources {
			objs, err := manifest.Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range objs {
				if isPolicyException(obj.Object) {
					continue
				}
				for _, user := range []struct {
					name   string
					groups []string
				}{{"ci", nil}, {"oncall", []string{"sre", "emergency"}}} {
					in := admission.ObjectInput(obj.Object, "production", now)
					in.Request.Username, in.Request.Groups = user.name, user.groups
					r, err := tracer.explain(ctx, p, cfg, in, lineage.Full)
					if err != nil {
						t.Fatalf("%s %s: %v", p.Name, in.Request.Name, err)
					}
					n := 0
					for _, v := range r.Rules {
						if set, ok := v.([]any); ok {
							n += len(set)
						}
					}
					if n != len(r.Findings) {
						t.Errorf("%s on %s %s as %s: traced %d results, the engine %d findings: %v", p.Name, in.Request.Kind, in.Request.Name, user.name, n, len(r.Findings), r.Findings)
					}
					if len(r.Trace) < 2 {
						t.Errorf("%s on %s: no trace", p.Name, in.Request.Name)
					}
					traced++
					found += n
				}
			}
		}
	}
	if traced < 100 || found < 20 {
		t.Fatalf("traced %d evaluations with %d findings: fixtures too small", traced, found)
	}
}

func TestTraceCommand(t *testing.T) {
	base := []string{"policy", "trace", "-f", "testdata/mixed/deployment-privileged.yaml", "--config", "testdata/policies.yaml", "--now", "2026-11-25T12:00:00Z"}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{
			name: "fails explains why the second container passes",
			args: []string{"--policy", "no-privileged", "--explain", "fails"},
			stdout: []string{
				"# Deployment shop/web (testdata/mixed/deployment-privileged.yaml:1): policy no-privileged, mode enforce\n",
				"#   [no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException\n",
				`library/security/no-privileged.rego:\d+ +\| \| Fail c.securityContext.privileged = true +\{c: \{"image": "quay.io/someone/pr`,
			},
		},
		{
			name:   "full shows the step that found it",
			args:   []string{"--policy", "no-privileged"},
			stdout: []string{`\| Exit data.attest.library.no_privileged.violation`, `query:1 +Enter violation = data.attest.library.no_privileged.violation`},
		},
		{
			name:   "a policy that is off is traced and says so",
			args:   []string{"--policy", "change-window"},
			stdout: []string{"policy change-window, mode off\n", "# no findings\n"},
		},
		{name: "no policy", args: nil, code: 2, stderr: "--policy is required"},
		{name: "unknown policy", args: []string{"--policy", "nope"}, code: 2, stderr: `--policy: unknown policy "nope"`},
		{name: "notes is not offered", args: []string{"--policy", "no-privileged", "--explain", "notes"}, code: 2, stderr: "--explain must be full, fails or debug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(base, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %s", code, tc.code, errOut)
			}
			for _, want := range tc.stdout {
				if !regexp.MustCompile(want).MatchString(out) && !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	t.Run("no input", func(t *testing.T) {
		_, errOut, code := attest(t, "", "policy", "trace", "--policy", "no-privileged")
		if code != 2 || !strings.Contains(errOut, "no input") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestTraceJSON(t *testing.T) {
	out, errOut, code := attest(t, "", "policy", "trace", "--policy", "trusted-registries", "-f", "testdata/mixed", "--config", "testdata/policies.yaml", "--format", "json", "--explain", "fails")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rs []traceResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("%d objects traced", len(rs))
	}
	for _, r := range rs {
		if r.Policy != "trusted-registries" || r.Mode != "enforce" || !r.Applies || r.File == "" || r.Line == 0 || len(r.Trace) == 0 {
			t.Errorf("incomplete %+v", r)
		}
		if r.Name == "web" && (len(r.Findings) != 1 || !strings.Contains(r.Findings[0], `image "quay.io/someone/proxy:latest" is from quay.io/someone/proxy, which is not a trusted registry`)) {
			t.Errorf("web: %v", r.Findings)
		}
	}
}
