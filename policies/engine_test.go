package policies_test

import (
	"context"
	"encoding/json"
	"reflect"
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
		{"unsupported keyword in a parameter's schema", []policies.Source{{Name: "a.rego", Text: md("a", "#   parameters:\n#     n: {type: integer, $ref: \"#/x\"}\n")}},
			`a.rego: METADATA custom.parameters.n.$ref: keyword "$ref" is not supported in parameter schemas`},
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

func TestCompliance(t *testing.T) {
	md := func(compliance string) policies.Source {
		return policies.Source{Name: "c.rego", Text: "# METADATA\n# title: t\n# custom:\n#   name: c\n" + compliance +
			"package custom.c\n\nimport rego.v1\n\nviolation contains \"x\" if false\n"}
	}
	e, err := compile(t, md("#   compliance:\n#     soc2: [CC6.1, CC7.2]\n#     gdpr: [\"Art. 30\"]\n#     hipaa: [\"164.312(b)\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Lookup("c")
	want := map[string][]string{"soc2": {"CC6.1", "CC7.2"}, "gdpr": {"Art. 30"}, "hipaa": {"164.312(b)"}}
	if !reflect.DeepEqual(p.Compliance, want) {
		t.Fatalf("Compliance = %#v, want %#v", p.Compliance, want)
	}
	e, err = compile(t, md(""))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := e.Lookup("c"); p.Compliance != nil {
		t.Fatalf("a policy without custom.compliance maps to %v", p.Compliance)
	}
	bad := map[string]struct{ yaml, want string }{
		"not a map":            {"#   compliance: [soc2]\n", "METADATA custom.compliance: expected a map of framework to control IDs"},
		"upper-case key":       {"#   compliance:\n#     SOC2: [CC6.1]\n", "METADATA custom.compliance.SOC2: a framework name is lower-case"},
		"scalar controls":      {"#   compliance:\n#     soc2: CC6.1\n", "METADATA custom.compliance.soc2: expected a list of control IDs, got string"},
		"no controls":          {"#   compliance:\n#     soc2: []\n", "METADATA custom.compliance.soc2: lists no controls"},
		"empty control":        {"#   compliance:\n#     soc2: [\"\"]\n", `METADATA custom.compliance.soc2[0]: a control ID is a non-empty string`},
		"padded control":       {"#   compliance:\n#     soc2: [\" CC6.1\"]\n", `METADATA custom.compliance.soc2[0]: a control ID is a non-empty string without surrounding spaces, got " CC6.1"`},
		"number control":       {"#   compliance:\n#     iso27001: [5.15]\n", "METADATA custom.compliance.iso27001[0]: expected a string, got float64"},
		"control listed twice": {"#   compliance:\n#     soc2: [CC6.1, CC6.1]\n", `METADATA custom.compliance.soc2[1]: control "CC6.1" is listed twice`},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := compile(t, md(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLibraryCompliance(t *testing.T) {
	for _, p := range library(t).Policies() {
		if len(p.Compliance) == 0 {
			t.Errorf("%s: METADATA maps the policy to no compliance controls", p.Name)
		}
	}
}

// optionalRules is a policy with the optional patch and sample rules, switched by the input.
const optionalRules = `# METADATA
# title: Optional rules
# custom:
#   name: optional
package custom.optional

import rego.v1

violation contains "no team label" if not input.resource.metadata.labels.team

patch contains {"op": "add", "path": "/metadata/labels/team", "value": input.params.team} if not input.resource.metadata.labels.team

patch contains {"op": "test", "path": "/metadata/labels", "value": null} if input.resource.metadata.labels == null

sample if input.request.operation == "UPDATE"
`

func evalDoc(t *testing.T, in policies.Input) *policies.Document {
	t.Helper()
	doc, err := policies.NewDocument(in)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestPatch(t *testing.T) {
	ctx := context.Background()
	e, err := compile(t, policies.Source{Name: "optional.rego", Text: optionalRules})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Lookup("optional")
	if !p.HasPatch() || !p.HasSample() {
		t.Fatalf("HasPatch = %v, HasSample = %v, want both", p.HasPatch(), p.HasSample())
	}
	s, err := p.NewSettings(policies.ModeEnforce, nil)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := p.Patch(ctx, evalDoc(t, policies.Input{Resource: map[string]any{"metadata": map[string]any{"labels": nil}}}), s)
	if err != nil {
		t.Fatal(err)
	}
	// input.params.team is undefined, so only the test operation is produced.
	want := []policies.PatchOp{{Op: "test", Path: "/metadata/labels", Value: nil}}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("Patch = %#v, want %#v", ops, want)
	}
	out, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != `[{"op":"test","path":"/metadata/labels","value":null}]` {
		t.Fatalf("JSON Patch = %s", got)
	}
	ops, err = p.Patch(ctx, evalDoc(t, policies.Input{Resource: map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "a"}}}}), s)
	if err != nil || len(ops) != 0 {
		t.Fatalf("a compliant object: Patch = %v, %v; want nothing", ops, err)
	}
	remove, _ := json.Marshal([]policies.PatchOp{{Op: "remove", Path: "/a~1b"}})
	if string(remove) != `[{"op":"remove","path":"/a~1b"}]` {
		t.Fatalf("remove marshals as %s", remove)
	}
}

func TestPatchRejectsBadOperations(t *testing.T) {
	cases := map[string]struct{ rule, want string }{
		"not a collection": {`patch := "add"`, "policy bad: rule patch must be a set or an array of JSON Patch operations, got a string"},
		"not an object":    {`patch := ["add"]`, "policy bad: rule patch: operation 0: want an object {op, path, value}, got a string"},
		"unknown op":       {`patch := [{"op": "move", "from": "/a", "path": "/b"}]`, "policy bad: rule patch: operation 0: "},
		"unknown op only":  {`patch := [{"op": "merge", "path": "/b", "value": 1}]`, `policy bad: rule patch: operation 0: unknown op "merge" (want add, replace, remove or test)`},
		"missing op":       {`patch := [{"path": "/b", "value": 1}]`, "operation 0: op is missing"},
		"relative path":    {`patch := [{"op": "add", "path": "spec.replicas", "value": 2}]`, `operation 0: path "spec.replicas" is not a JSON pointer into the object: it must start with "/"`},
		"bad escape":       {`patch := [{"op": "remove", "path": "/metadata/annotations/a~b"}]`, `path "/metadata/annotations/a~b": "~" must be escaped as "~0"`},
		"add no value":     {`patch := [{"op": "add", "path": "/a"}]`, "operation 0: op add needs a value"},
		"remove value":     {`patch := [{"op": "remove", "path": "/a", "value": 1}]`, "operation 0: op remove takes no value"},
		"path not string":  {`patch := [{"op": "add", "path": 1, "value": 1}]`, "operation 0: path must be a string, got a number"},
		"extra field":      {`patch := [{"op": "add", "path": "/a", "value": 1, "note": "x"}]`, `operation 0: unknown field "note"`},
		"second bad":       {`patch := [{"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "a", "value": 1}]`, "operation 1: path"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := compile(t, policies.Source{Name: "bad.rego", Text: "package custom.bad\n\nimport rego.v1\n\nviolation contains \"x\" if false\n\n" + tc.rule + "\n"})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := e.Lookup("bad")
			_, err = p.Patch(context.Background(), evalDoc(t, policies.Input{}), p.DefaultSettings())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSampled(t *testing.T) {
	ctx := context.Background()
	e, err := compile(t,
		policies.Source{Name: "optional.rego", Text: optionalRules},
		policies.Source{Name: "plain.rego", Text: "package custom.plain\n\nimport rego.v1\n\nviolation contains \"x\" if false\n"},
		policies.Source{Name: "odd.rego", Text: "package custom.odd\n\nimport rego.v1\n\nviolation contains \"x\" if false\n\nsample := \"yes\"\n"},
	)
	if err != nil {
		t.Fatal(err)
	}
	optional, _ := e.Lookup("optional")
	for op, want := range map[string]bool{"UPDATE": true, "CREATE": false} {
		got, err := optional.Sampled(ctx, evalDoc(t, policies.Input{Request: policies.Request{Operation: op}}), optional.DefaultSettings())
		if err != nil || got != want {
			t.Errorf("%s: Sampled = %v, %v; want %v", op, got, err, want)
		}
	}
	plain, _ := e.Lookup("plain")
	if plain.HasPatch() || plain.HasSample() {
		t.Fatal("a policy without patch or sample rules claims them")
	}
	if got, err := plain.Sampled(ctx, evalDoc(t, policies.Input{}), plain.DefaultSettings()); got || err != nil {
		t.Fatalf("no sample rule: Sampled = %v, %v", got, err)
	}
	if ops, err := plain.Patch(ctx, evalDoc(t, policies.Input{}), plain.DefaultSettings()); ops != nil || err != nil {
		t.Fatalf("no patch rule: Patch = %v, %v", ops, err)
	}
	// Without the rule no query runs: asking costs nothing on the hot path.
	doc, s := evalDoc(t, policies.Input{}), plain.DefaultSettings()
	if allocs := testing.AllocsPerRun(100, func() { _, _ = plain.Sampled(ctx, doc, s); _, _ = plain.Patch(ctx, doc, s) }); allocs != 0 {
		t.Fatalf("Sampled and Patch without their rules allocate %v times", allocs)
	}
	odd, _ := e.Lookup("odd")
	if _, err := odd.Sampled(ctx, evalDoc(t, policies.Input{}), odd.DefaultSettings()); err == nil || !strings.Contains(err.Error(), "policy odd: rule sample must be a boolean, got a string") {
		t.Fatalf("a string sample rule: err = %v", err)
	}
}

// TestRequestBackground: input.request.background is what the caller set, so a policy can tell the background
// audit from an admission.
func TestRequestBackground(t *testing.T) {
	e, err := compile(t, policies.Source{Name: "bg.rego", Text: "package custom.bg\n\nimport rego.v1\n\nviolation contains \"audit\" if input.request.background\n"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Lookup("bg")
	for _, background := range []bool{false, true} {
		doc, err := policies.NewDocument(policies.Input{Request: policies.Request{Operation: "CREATE", Background: background}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Eval(context.Background(), doc, p.DefaultSettings())
		if err != nil {
			t.Fatal(err)
		}
		if (len(got) == 1) != background {
			t.Errorf("background=%v: findings %+v", background, got)
		}
	}
}
