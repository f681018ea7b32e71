package regoplan

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestEmptySetShared: sets MakeSet makes share one empty value until their first add, which gives the set a
// value of its own; the shared one stays empty however many evaluations fill their sets.
func TestEmptySetShared(t *testing.T) {
	mod := ast.MustParseModuleWithOpts(`package t
import rego.v1
s contains x if some x in input.xs`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	prog, err := Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/s"})
	if err != nil {
		t.Fatal(err)
	}
	eval := func(xs ...string) *ast.Term {
		arr := make([]*ast.Term, len(xs))
		for i, x := range xs {
			arr[i] = ast.StringTerm(x)
		}
		v, ok, err := prog.Eval(context.Background(), "t/s", ast.NewTerm(ast.NewObject([2]*ast.Term{ast.StringTerm("xs"), ast.ArrayTerm(arr...)})))
		if err != nil || !ok {
			t.Fatalf("Eval(%v) = %v, %v, %v", xs, v, ok, err)
		}
		return v
	}
	if v := eval(); v.Value != emptySet {
		t.Errorf("a set left empty is %v, not the shared empty set", v)
	}
	a, b := eval("a", "b"), eval("c")
	if a.Value == emptySet || b.Value == emptySet || !a.Equal(ast.SetTerm(ast.StringTerm("a"), ast.StringTerm("b"))) || !b.Equal(ast.SetTerm(ast.StringTerm("c"))) {
		t.Errorf("filled sets: %v and %v", a, b)
	}
	if emptySet.Len() != 0 {
		t.Errorf("the shared empty set was changed: %v", emptySet)
	}
}
