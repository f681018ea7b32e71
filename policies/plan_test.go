package policies_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/regoplan"
)

// TestLibraryPlanned checks that the planner plans every library policy: none falls back to topdown.
func TestLibraryPlanned(t *testing.T) {
	e := library(t)
	e.Plan()
	for _, p := range e.Policies() {
		if ok, err := p.Planned(); !ok {
			t.Errorf("%s is not planned: %v", p.Name, err)
		}
	}
}

// TestLibraryRegoTestsThroughPlans runs every Rego unit test of the library through the plan evaluator, each test
// rule an entrypoint over its policy and test modules: the library's own expectations (messages, paths, patches,
// `with input as` documents) hold under the evaluator that admissions use, as they do under topdown.
func TestLibraryRegoTestsThroughPlans(t *testing.T) {
	ctx := context.Background()
	srcs, tests, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, src := range append(append([]policies.Source{}, srcs...), tests...) {
		mod, err := policies.ParseSource(src)
		if err != nil {
			t.Fatal(err)
		}
		modules[src.Name] = mod
	}
	ran := 0
	for _, ts := range tests {
		mod := modules[ts.Name]
		var entrypoints []string
		for _, r := range mod.Rules {
			name := r.Head.Ref()[0].Value.String()
			if !strings.HasPrefix(name, "test_") {
				continue
			}
			entrypoints = append(entrypoints, entrypoint(mod, name))
		}
		prog, err := regoplan.Plan(ctx, modules, policies.PureCapabilities(), dedupe(entrypoints))
		if err != nil {
			t.Errorf("%s: %v", ts.Name, err)
			continue
		}
		for _, ep := range dedupe(entrypoints) {
			v, ok, err := prog.Eval(ctx, ep, nil)
			switch {
			case err != nil:
				t.Errorf("%s %s: %v", ts.Name, ep, err)
			case !ok || !v.Equal(ast.BooleanTerm(true)):
				t.Errorf("%s %s: got %v (defined %v), want true", ts.Name, ep, v, ok)
			}
			ran++
		}
	}
	if ran < 100 {
		t.Errorf("ran %d test rules through plans; the library has more", ran)
	}
	t.Logf("%d library test rules passed through plans", ran)
}

func entrypoint(mod *ast.Module, rule string) string {
	parts := []string{}
	for _, term := range mod.Package.Path[1:] {
		parts = append(parts, string(term.Value.(ast.String)))
	}
	return strings.Join(append(parts, rule), "/")
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TestRegoV0PolicyPlanned plans a policy written in Rego v0 syntax and decides with it as topdown does.
func TestRegoV0PolicyPlanned(t *testing.T) {
	src := `# METADATA
# title: v0 probe
# custom:
#   name: v0-probe
package custom.v0_probe

deny[msg] {
	c := input.containers[_]
	c.securityContext.privileged
	msg := sprintf("%s is privileged", [c.name])
}
`
	ctx := context.Background()
	e, err := policies.Compile(ctx, []policies.Source{{Name: "v0.rego", Text: src}})
	if err != nil {
		t.Fatal(err)
	}
	e.Plan()
	p, _ := e.Lookup("v0-probe")
	if ok, err := p.Planned(); !ok {
		t.Fatalf("not planned: %v", err)
	}
	doc, err := policies.NewDocument(policies.Input{Containers: []policies.Container{
		{Path: "spec.containers[0]", Type: "container", Name: "app", Fields: map[string]any{"securityContext": map[string]any{"privileged": true}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.NewSettings(policies.ModeEnforce, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetMemo(false)
	var got [2][]policies.Finding
	for i, planned := range []bool{true, false} {
		e.SetPlanned(planned)
		if got[i], err = p.Eval(ctx, doc, s); err != nil {
			t.Fatal(err)
		}
	}
	if len(got[0]) != 1 || got[0][0].Message != "app is privileged" || !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("plan %+v, topdown %+v", got[0], got[1])
	}
}
