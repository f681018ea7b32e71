package policies_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

func compile(t *testing.T, srcs ...policies.Source) (*policies.Engine, error) {
	t.Helper()
	return policies.Compile(context.Background(), srcs)
}

func TestImpureBuiltinsAreRejectedByName(t *testing.T) {
	cases := map[string]string{
		"http.send":          `violation contains "x" if { http.send({"method": "GET", "url": "http://127.0.0.1"}) }`,
		"time.now_ns":        `violation contains "x" if { time.now_ns() > 0 }`,
		"time.now_ns nested": `violation contains msg if { msg := sprintf("%d", [time.now_ns()]) }`,
		"net.lookup_ip_addr": `violation contains "x" if { net.lookup_ip_addr("example.com") }`,
		"opa.runtime":        `violation contains "x" if { opa.runtime().env }`,
		"rego.parse_module":  `violation contains "x" if { rego.parse_module("a.rego", "package a") }`,
		"trace":              `violation contains "x" if { trace("hello") }`,
	}
	for name, rule := range cases {
		t.Run(name, func(t *testing.T) {
			builtin := strings.Fields(name)[0]
			_, err := compile(t, policies.Source{Name: "impure.rego", Text: "package custom.impure\n\nimport rego.v1\n\n" + rule + "\n"})
			if err == nil {
				t.Fatal("a policy calling an impure built-in compiled")
			}
			want := "impure.rego:5: rego_compile_error: " + builtin + " is not allowed in ATTEST policies"
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name the built-in (want %q)", err, want)
			}
		})
	}
}

func TestRegoVersions(t *testing.T) {
	const v0 = `package attest.security

violation[{"violated": true, "message": msg, "severity": "high"}] {
	c := input.containers[_]
	c.securityContext.privileged
	msg := sprintf("container %s is privileged", [c.name])
}
`
	const v1 = `package custom.v1

violation contains {"message": "hi"} if input.request.operation == "CREATE"
`
	const v0ImportsV1 = `package custom.compat

import rego.v1

deny contains "denied" if input.request.operation == "CREATE"
`
	for name, src := range map[string]string{"v0 from the policy documents": v0, "v1 without import": v1, "v0 file importing rego.v1": v0ImportsV1} {
		t.Run(name, func(t *testing.T) {
			if _, err := compile(t, policies.Source{Name: "p.rego", Text: src}); err != nil {
				t.Fatal(err)
			}
		})
	}
	_, err := compile(t, policies.Source{Name: "broken.rego", Text: "package custom.broken\n\nviolation contains x if {\n  x := \n}\n"})
	if err == nil || !strings.Contains(err.Error(), "broken.rego:") {
		t.Fatalf("a broken file: %v", err)
	}
	_, err = compile(t, policies.Source{Name: "strict.rego", Text: v0, Version: policies.RegoV1})
	if err == nil {
		t.Fatal("v0 syntax compiled when v1 was required")
	}
}

func TestFindingShapes(t *testing.T) {
	const src = `# METADATA
# title: Shapes
# description: every finding shape users bring
# custom:
#   name: shapes
#   severity: low
#   mode: enforce
#   remediation: the default fix
package custom.shapes

import rego.v1

violation contains {"message": "documents' form", "violated": true, "severity": "high", "path": "spec.a"}
violation contains {"message": "not violated", "violated": false}
violation contains {"msg": "gatekeeper form"}
violation contains {"message": "own fix", "fix": "do this"}
deny contains "conftest string"
warn contains "a warning"
`
	e, err := compile(t, policies.Source{Name: "shapes.rego", Text: src})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Lookup("shapes")
	doc, err := policies.NewDocument(policies.Input{Request: policies.Request{Operation: "CREATE"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Eval(context.Background(), doc, p.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	want := []policies.Finding{
		{Message: "a warning", Severity: "low", Fix: "the default fix", Warning: true},
		{Message: "conftest string", Severity: "low", Fix: "the default fix"},
		{Message: "gatekeeper form", Severity: "low", Fix: "the default fix"},
		{Message: "own fix", Severity: "low", Fix: "do this"},
		{Message: "documents' form", Severity: "high", Path: "spec.a", Fix: "the default fix"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("finding %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCompileErrors(t *testing.T) {
	md := func(name, extra string) string {
		return "# METADATA\n# title: t\n# custom:\n#   name: " + name + "\n" + extra + "package custom." + strings.ReplaceAll(name, "-", "_") + "\n\nimport rego.v1\n\nviolation contains \"x\" if false\n"
	}
	cases := []struct {
		name string
		srcs []policies.Source
		want string
	}{
		{"bad severity", []policies.Source{{Name: "a.rego", Text: md("a", "#   severity: urgent\n")}}, `a.rego: METADATA custom.severity: unknown severity "urgent"`},
		{"bad mode", []policies.Source{{Name: "a.rego", Text: md("a", "#   mode: block\n")}}, `a.rego: METADATA custom.mode: unknown mode "block"`},
		{"bad name", []policies.Source{{Name: "a.rego", Text: md("Not_A_Name", "")}}, `METADATA custom.name "Not_A_Name"`},
		{"duplicate name", []policies.Source{{Name: "a.rego", Text: md("same", "")}, {Name: "b.rego", Text: strings.Replace(md("same", ""), "custom.same", "custom.other", 1)}}, `b.rego: policy name "same" is already used by a.rego`},
		{"bad parameter schema", []policies.Source{{Name: "a.rego", Text: md("a", "#   parameters:\n#     n: {type: nonsense}\n")}}, "a.rego: METADATA custom.parameters"},
		{"bad default", []policies.Source{{Name: "a.rego", Text: md("a", "#   parameters:\n#     n: {type: integer, default: \"two\"}\n")}}, "METADATA custom.parameters defaults: n: got string, want integer"},
		{"no result rule", []policies.Source{{Name: "a.rego", Text: "package custom.none\n\nimport rego.v1\n\nallow := true\n"}}, "defines none of the rules violation, deny, warn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(t, tc.srcs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParamsValidation(t *testing.T) {
	p, _ := library(t).Lookup("trusted-registries")
	cases := map[string]struct {
		params map[string]any
		want   string
	}{
		"valid":         {map[string]any{"trusted_registries": []any{"gcr.io"}}, ""},
		"wrong type":    {map[string]any{"trusted_registries": "gcr.io"}, "trusted_registries: got string, want array"},
		"wrong item":    {map[string]any{"trusted_registries": []any{float64(1)}}, "trusted_registries[0]: got number, want string"},
		"blank item":    {map[string]any{"trusted_registries": []any{"gcr.io/ x"}}, "trusted_registries[0]: "},
		"unknown param": {map[string]any{"registries": []any{}}, "registries: unknown parameter (this policy takes trusted_registries)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := p.ValidateParams(tc.params)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if got := p.EffectiveParams(nil)["trusted_registries"]; got == nil {
		t.Fatal("default for trusted_registries missing")
	}
}
