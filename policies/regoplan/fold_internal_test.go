package regoplan

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// planRule plans the rule r of package t, whose rules (Rego v1) are src.
func planRule(t *testing.T, src string) *Program {
	t.Helper()
	mod := ast.MustParseModuleWithOpts("package t\nimport rego.v1\n"+src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	p, err := Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/r"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFold counts the collections each rule's plan makes at run time: literals whose value can only be read are
// built once when the plan loads; a literal handed on (to a function, as a rule's value) or with a member computed
// at run time is still made where it was.
func TestFold(t *testing.T) {
	cases := []struct {
		name, src string
		wantMakes int // make statements left in the rule's function
	}{
		{name: "literal set read by a built-in in a loop", src: `r contains c if {
	some c in input.containers
	c.type in {"container", "init"}
}`, wantMakes: 1}, // the rule's own result set
		{name: "literal scanned", src: `r contains x if some x in ["a", "b"]`, wantMakes: 1},
		{name: "literal object looked up", src: `r := {"cpu": "CPU", "memory": "memory"}[input.k]`, wantMakes: 0},
		{name: "literal passed to a function", src: `f(s) := count(s)
r := f({"a", "b"})`, wantMakes: 1},
		{name: "literal as a rule's value", src: `r := {"a", "b"}`, wantMakes: 1},
		{name: "member computed at run time", src: `r := {"a", input.k}`, wantMakes: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRule(t, tc.src)
			fn := p.byPath["g0/t/r"]
			if fn == nil {
				t.Fatalf("no function for t.r among %v", p.byPath)
			}
			makes := 0
			walk(fn.blocks, func(in *instr) {
				if isMake(in.op) {
					makes++
				}
			})
			if makes != tc.wantMakes {
				t.Errorf("%d make statements left, want %d", makes, tc.wantMakes)
			}
		})
	}
}

// TestLiteralArrays: an array literal of computed elements is made by one statement, whatever its elements'
// statements in between; an array built in a loop (a comprehension) keeps its appends (TestMatchesTopdown checks
// the values).
func TestLiteralArrays(t *testing.T) {
	cases := []struct {
		name, src          string
		wantOf, wantAppend int
	}{
		{name: "sprintf's arguments", src: `r := sprintf("%s/%s", [input.a, input.b])`, wantOf: 1},
		{name: "an element computed by a call", src: `r := [upper(input.a), lower(input.b), input.c]`, wantOf: 1},
		{name: "nested", src: `r := [input.a, [input.b, input.c]]`, wantOf: 2},
		{name: "a comprehension", src: `r := [x | some x in input.list]`, wantAppend: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRule(t, tc.src)
			ops := map[opcode]int{}
			walk(p.byPath["g0/t/r"].blocks, func(in *instr) { ops[in.op]++ })
			if ops[opArrayOf] != tc.wantOf || ops[opArrayAppend] != tc.wantAppend || ops[opMakeArray] != tc.wantAppend {
				t.Errorf("%d arrays made in one statement, %d appends, %d makes; want %d, %d, %d",
					ops[opArrayOf], ops[opArrayAppend], ops[opMakeArray], tc.wantOf, tc.wantAppend, tc.wantAppend)
			}
		})
	}
}

// TestLiteralObjects: an object literal of computed members is made by one statement; an object built in a loop (a
// comprehension) or by a partial object rule keeps its inserts (TestMatchesTopdown checks the values).
func TestLiteralObjects(t *testing.T) {
	cases := []struct {
		name, src          string
		wantOf, wantInsert int
	}{
		{name: "a finding", src: `r := {"message": upper(input.a), "path": input.b, "fix": "do"}`, wantOf: 1},
		{name: "nested", src: `r := {"a": input.a, "b": {"c": input.c}}`, wantOf: 2},
		{name: "a comprehension", src: `r := {k: v | some k, v in input.m}`, wantInsert: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRule(t, tc.src)
			ops := map[opcode]int{}
			walk(p.byPath["g0/t/r"].blocks, func(in *instr) { ops[in.op]++ })
			inserts := ops[opObjectInsert] + ops[opObjectInsertOnce]
			if ops[opObjectOf] != tc.wantOf || inserts != tc.wantInsert || ops[opMakeObject] != tc.wantInsert {
				t.Errorf("%d objects made in one statement, %d inserts, %d makes; want %d, %d, %d",
					ops[opObjectOf], inserts, ops[opMakeObject], tc.wantOf, tc.wantInsert, tc.wantInsert)
			}
		})
	}
}

// TestDirectResults: an entrypoint's plan adds its value to the result set as it is, not inside the object
// {"result": value} made for each evaluation (TestMatchesTopdown checks the values).
func TestDirectResults(t *testing.T) {
	p := planRule(t, "r contains c.name if some c in input.containers")
	ops := map[opcode]int{}
	walk(p.plans["t/r"].blocks, func(in *instr) { ops[in.op]++ })
	if ops[opResultValue] != 1 || ops[opMakeObject] != 0 || ops[opResultAdd] != 0 {
		t.Errorf("the plan adds its value %d times, makes %d objects and adds %d objects, want 1, 0, 0", ops[opResultValue], ops[opMakeObject], ops[opResultAdd])
	}
}

// TestReadsFields: a program reads input by its fields only when no rule takes input as a whole, looks a field up
// by a computed key or replaces input with `with`; EvalFields then gives what Eval gives for the object.
func TestReadsFields(t *testing.T) {
	cases := []struct {
		name, src string
		want      bool
	}{
		{name: "fields", src: `r := [input.a, input.b.c]`, want: true},
		{name: "fields in functions and rules", src: `f(x) := [x, input.a]
g := input.b
r := [f(1), g]`, want: true},
		{name: "input as a whole", src: `r := input`},
		{name: "input passed to a built-in", src: `r := object.get(input, "a", 0)`},
		{name: "computed key", src: `r := input[input.k]`},
		{name: "input scanned", src: `r := [k | some k, _ in input]`},
		{name: "with input", src: `g := input.a
r := x if x := g with input as {"a": 2}`},
	}
	in := ast.MustParseTerm(`{"a": 1, "b": {"c": 2}, "k": "a"}`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRule(t, tc.src)
			if p.ReadsFields() != tc.want {
				t.Fatalf("ReadsFields() = %v, want %v", p.ReadsFields(), tc.want)
			}
			want, wantOK, err := p.Eval(context.Background(), "t/r", in)
			if err != nil {
				t.Fatal(err)
			}
			var fields []Field
			in.Value.(ast.Object).Foreach(func(k, v *ast.Term) { fields = append(fields, Field{Name: string(k.Value.(ast.String)), Value: v}) })
			got, gotOK, err := p.EvalFields(context.Background(), "t/r", fields)
			if err != nil {
				t.Fatal(err)
			}
			if gotOK != wantOK || (wantOK && got.Value.Compare(want.Value) != 0) {
				t.Errorf("EvalFields %v (defined %v), Eval %v (defined %v)", got, gotOK, want, wantOK)
			}
		})
	}
}
