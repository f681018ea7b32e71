package regoplan

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestEmptyCollectionsShared: sets MakeSet and objects MakeObject make share one empty value until their first
// add, which gives each a value of its own; the shared ones stay empty however many evaluations fill theirs.
func TestEmptyCollectionsShared(t *testing.T) {
	mod := ast.MustParseModuleWithOpts(`package t
import rego.v1
s contains x if some x in input.xs
o[x] := true if some x in input.xs
a := [x | some x in input.xs]`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	prog, err := Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/s", "t/o", "t/a"})
	if err != nil {
		t.Fatal(err)
	}
	eval := func(entry string, xs ...string) *ast.Term {
		arr := make([]*ast.Term, len(xs))
		for i, x := range xs {
			arr[i] = ast.StringTerm(x)
		}
		v, ok, err := prog.Eval(context.Background(), entry, ast.NewTerm(ast.NewObject([2]*ast.Term{ast.StringTerm("xs"), ast.ArrayTerm(arr...)})))
		if err != nil || !ok {
			t.Fatalf("Eval(%v) = %v, %v, %v", xs, v, ok, err)
		}
		return v
	}
	if v := eval("t/s"); v.Value != emptySet {
		t.Errorf("a set left empty is %v, not the shared empty set", v)
	}
	if v := eval("t/a"); v.Value != emptyArray {
		t.Errorf("an array left empty is %v, not the shared empty array", v)
	}
	if v := eval("t/a", "x", "y"); v.Value == emptyArray || !v.Equal(ast.MustParseTerm(`["x", "y"]`)) {
		t.Errorf("filled array: %v", v)
	}
	if v := eval("t/o"); v.Value != emptyObject {
		t.Errorf("an object left empty is %v, not the shared empty object", v)
	}
	a, b := eval("t/s", "a", "b"), eval("t/s", "c")
	if a.Value == emptySet || b.Value == emptySet || !a.Equal(ast.SetTerm(ast.StringTerm("a"), ast.StringTerm("b"))) || !b.Equal(ast.SetTerm(ast.StringTerm("c"))) {
		t.Errorf("filled sets: %v and %v", a, b)
	}
	o := eval("t/o", "a")
	if o.Value == emptyObject || !o.Equal(ast.MustParseTerm(`{"a": true}`)) {
		t.Errorf("filled object: %v", o)
	}
	if emptySet.Len() != 0 || emptyObject.Len() != 0 || emptyArray.Len() != 0 {
		t.Errorf("a shared empty value was changed: %v, %v, %v", emptySet, emptyObject, emptyArray)
	}
}
