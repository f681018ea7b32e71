package regoplan_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/continuums/attest/policies/regoplan"
)

// topdownEval evaluates data.t.<rule> with topdown in its default mode, as the policies package does.
func topdownEval(t *testing.T, modules map[string]string, rule string, input any) (any, bool, error) {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query("x = data.t." + rule)}
	for name, src := range modules {
		opts = append(opts, rego.Module(name, src))
	}
	if input != nil {
		opts = append(opts, rego.Input(input))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil || len(rs) == 0 {
		return nil, false, err
	}
	return rs[0].Bindings["x"], true, nil
}

func planEval(t *testing.T, modules map[string]string, rule string, input any) (any, bool, error) {
	t.Helper()
	parsed := map[string]*ast.Module{}
	for name, src := range modules {
		mod, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		parsed[name] = mod
	}
	prog, err := regoplan.Plan(context.Background(), parsed, ast.CapabilitiesForThisVersion(), []string{"t/" + rule})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var in *ast.Term
	if input != nil {
		v, err := ast.InterfaceToValue(input)
		if err != nil {
			t.Fatal(err)
		}
		in = ast.NewTerm(v)
	}
	v, ok, err := prog.Eval(context.Background(), "t/"+rule, in)
	if err != nil || !ok {
		return nil, ok, err
	}
	out, err := ast.JSON(v.Value)
	return out, true, err
}

// TestMatchesTopdown evaluates each case with the plan and with topdown: the same value, the same definedness,
// the same kind of error.
func TestMatchesTopdown(t *testing.T) {
	input := map[string]any{
		"containers": []any{
			map[string]any{"name": "app", "image": "gcr.io/a:1", "resources": map[string]any{"limits": map[string]any{"cpu": "500m"}}},
			map[string]any{"name": "proxy", "image": "nginx", "securityContext": map[string]any{"privileged": true}},
		},
		"labels": map[string]any{"b": "2", "a": "1", "c": "3"},
		"n":      3,
		"f":      1.5,
		"s":      "hello",
		"params": map[string]any{"max": "1", "list": []any{"x", "y"}},
	}
	cases := []struct {
		name, rule string
		src        string
		input      any
		wantErr    string // a topdown error code both must report
		modules    map[string]string
	}{
		{name: "partial set with sprintf", rule: "violation", src: `
violation contains msg if {
	some c in input.containers
	c.securityContext.privileged
	msg := sprintf("%s is privileged", [c.name])
}`},
		{name: "else chain", rule: "size", src: `
size := "big" if input.n > 5
else := "medium" if input.n > 2
else := "small"`},
		{name: "not and helper functions", rule: "missing", src: `
has(c, k) if c.resources.limits[k]
missing contains c.name if {
	some c in input.containers
	not has(c, "memory")
}`},
		{name: "every", rule: "all_named", src: `
all_named if every c in input.containers { c.name != "" }`},
		{name: "array comprehension keeps object order", rule: "keys", src: `
keys := [k | some k, _ in input.labels]`},
		{name: "object comprehension and count", rule: "obj", src: `
obj := {c.name: count(c) | some c in input.containers}`},
		{name: "set comprehension of numbers", rule: "nums", src: `
nums := {y | some x in [1, 2, 2.0, 3]; y := x * 2}`},
		{name: "numbers compare by value", rule: "same", src: `
same if 1 == 1.0`},
		{name: "builtin error is undefined", rule: "n", src: `
n := to_number("not a number")`},
		{name: "builtin error inside else", rule: "n", src: `
n := to_number(input.s) if true
else := -1`},
		{name: "units and regex", rule: "q", src: `
q := units.parse(input.containers[0].resources.limits.cpu) if regex.match("^[0-9]+m$", input.containers[0].resources.limits.cpu)`},
		{name: "object.get and defaults", rule: "g", src: `
g := [object.get(c, ["resources", "limits", "cpu"], "none") | some c in input.containers]`},
		{name: "partial object rule", rule: "po", src: `
po[c.name] := c.image if some c in input.containers`},
		{name: "partial object key conflict", rule: "po", src: `
po[k] := v if some k, v in {"a": 1}
po[k] := v if some k, v in {"a": 2}`, wantErr: topdown.ConflictErr},
		{name: "complete rule conflict", rule: "c", src: `
c := 1 if true
c := 2 if true`, wantErr: topdown.ConflictErr},
		{name: "function conflict", rule: "r", src: `
f(x) := 1 if x
f(x) := 2 if x
r := f(true)`, wantErr: topdown.ConflictErr},
		{name: "with input", rule: "r", src: `
names contains c.name if some c in input.containers
r := n if { n := names with input as {"containers": [{"name": "z"}]} }`},
		{name: "with input path", rule: "r", src: `
p := input.params.max
r := [a, b] if {
	a := p with input.params.max as "9"
	b := p
}`},
		{name: "rule of no arguments read twice", rule: "r", src: `
sections[c.name] := object.get(c, "resources", {}) if some c in input.containers
r := [count(sections), sections.app]`},
		{name: "other package", rule: "r", modules: map[string]string{"lib.rego": `package lib
import rego.v1
double(x) := x * 2
names contains c.name if some c in input.containers`}, src: `
import data.lib
r := {"d": lib.double(input.n), "names": lib.names}`},
		{name: "dynamic data ref", rule: "r", modules: map[string]string{"lib.rego": `package lib
import rego.v1
a := 1
b := 2`}, src: `
r := [data.lib[k] | some k in ["a", "b", "c"]]`},
		{name: "input undefined", rule: "r", input: "none", src: `
r := "no input" if not input.anything`},
		{name: "input not an object", rule: "r", input: []any{"a", "b"}, src: `
r := "no field" if not input.anything`},
		{name: "array index out of range", rule: "r", src: `
r := input.params.list[5]`},
		{name: "string operations", rule: "r", src: `
r := {"c": concat(",", input.params.list), "u": upper(input.s), "t": trim_suffix(input.s, "lo"), "s": split("a.b.c", ".")}`},
		{name: "json round trip", rule: "r", src: `
r := json.unmarshal(json.marshal(input.labels))`},
		{name: "set membership and intersection", rule: "r", src: `
r := {"in": "x" in input.params.list, "i": {1, 2, 3} & {2, 3, 4}, "d": {1, 2} - {1}}`},
		// Literal collections, which the plan builds once (see fold.go), read in every way a rule reads them.
		{name: "literal set in a loop", rule: "r", src: `
r contains c.name if {
	some c in input.containers
	c.name in {"app", "sidecar"}
}`},
		{name: "literal collections scanned, counted and indexed", rule: "r", src: `
r := {"s": [x | some x in {"b", "a"}], "n": count({"k": "v", "l": "w"}), "i": ["p", "q"][1], "o": {"k": "v"}.k}`},
		{name: "literal collection returned and kept by a rule", rule: "r", src: `
kinds := {"Deployment", "StatefulSet"}
more := kinds | {"Job"}
r := {"kinds": kinds, "more": more, "again": kinds}`},
		{name: "literal collection passed to a function and returned by a built-in", rule: "r", src: `
with_extra(s) := s | {"z"}
r := {"f": with_extra({"x", "y"}), "g": object.get({}, "missing", ["d", "e"]), "u": object.union({"a": "1"}, {"b": "2"})}`},
		{name: "literal collection in a loop with a dynamic member", rule: "r", src: `
r := [s | some c in input.containers; s := {"fixed", c.name}]`},
		// Literal arrays of computed elements, made in one statement (see literals).
		{name: "array literals of computed elements", rule: "r", src: `
r contains msg if {
	some i, c in input.containers
	msg := sprintf("%s %d %v %v", [c.name, i, object.get(c, ["resources", "limits", "cpu"], "none"), [c.image, [i, c.name]]])
}`},
		{name: "array literals kept, compared and returned", rule: "r", src: `
pair(c) := [c.name, c.image]
r := {"pairs": [p | some c in input.containers; p := pair(c)], "eq": pair(input.containers[0]) == ["app", "gcr.io/a:1"],
	"arg": [x | some x in [input.s, input.n, input.f]], "dup": [input.s, input.s]}`},
		{name: "array literal with an undefined element", rule: "r", src: `
r := [input.s, input.missing] if true
else := "undefined element"`},
		// Literal objects of computed members, made in one statement (see literals).
		{name: "object literals of computed members", rule: "r", src: `
r contains obj if {
	some i, c in input.containers
	obj := {"name": c.name, "image": c.image, c.name: [c.image, i], "nested": {"k": c.name, "n": count(c)}}
}`},
		{name: "object literal with keys that coincide", rule: "r", src: `
r := {input.s: 1, "hello": 2, "other": input.n}`},
		{name: "object literal with an undefined member", rule: "r", src: `
r := {"a": input.s, "b": input.missing} if true
else := "undefined member"`},
		{name: "object literals kept and compared", rule: "r", src: `
o(c) := {"n": c.name}
r := {"eq": o(input.containers[0]) == {"n": "app"}, "all": [x | some c in input.containers; x := o(c)], "merged": object.union(o(input.containers[0]), {"extra": input.s})}`},
		{name: "sets made empty: kept empty, filled, aliased, compared and nested", rule: "r", src: `
none contains c.name if {
	some c in input.containers
	c.name == "nobody"
}
some_names contains c.name if some c in input.containers
empty_here := {x | some x in input.params.list; x == "z"}
filled_here := {x | some x in input.params.list}
pair := [a, b] if {
	a := {x | some x in input.params.list; x == "none"}
	b := a
	count(b) == 0
}
r := {"none": none, "some": some_names, "eq": none == empty_here, "filled": filled_here, "pair": pair,
	"union": none | filled_here, "nested": {y | some x in input.params.list; y := {x | x == "q"}}}`},
		{name: "objects made empty: kept empty, filled, aliased, merged and nested", rule: "r", src: `
po[k] := v if {
	some k, v in input.labels
	v == "nine"
}
filled[k] := v if some k, v in input.labels
none := {k: v | some k, v in input.labels; v == "ten"}
alias := [a, b] if {
	a := {k: 1 | some k in input.params.list; k == "z"}
	b := a
	count(b) == 0
}
r := {"po": po, "filled": filled, "none": none, "alias": alias, "eq": po == none,
	"merged": object.union(none, filled), "nested": {k: {x: 1 | x := k; x == "q"} | some k in input.params.list}}`},
		{name: "array literal as a function's argument pattern", rule: "r", src: `
m(["cpu", "memory"]) := "both"
m([x]) := x
r := [m([k | some k in ["cpu", "memory"]; input.n > 0]), m([input.s])]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			modules := map[string]string{"t.rego": "package t\nimport rego.v1\n" + tc.src}
			for k, v := range tc.modules {
				modules[k] = v
			}
			in := tc.input
			switch in {
			case nil:
				in = input
			case "none":
				in = nil
			}
			want, wantOK, wantErr := topdownEval(t, modules, tc.rule, in)
			got, gotOK, gotErr := planEval(t, modules, tc.rule, in)
			if tc.wantErr != "" {
				for which, err := range map[string]error{"topdown": wantErr, "plan": gotErr} {
					var te *topdown.Error
					if !errors.As(err, &te) || te.Code != tc.wantErr {
						t.Errorf("%s: error %v, want code %s", which, err, tc.wantErr)
					}
				}
				return
			}
			if wantErr != nil || gotErr != nil {
				t.Fatalf("errors: topdown %v, plan %v", wantErr, gotErr)
			}
			if gotOK != wantOK || !reflect.DeepEqual(got, want) {
				t.Errorf("plan %v (defined %v), topdown %v (defined %v)", got, gotOK, want, wantOK)
			}
		})
	}
}

// TestEvalCancelled stops a long evaluation when its context ends.
func TestEvalCancelled(t *testing.T) {
	mod := ast.MustParseModuleWithOpts(`package t
import rego.v1
r := count([1 | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); a != b])`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	prog, err := regoplan.Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/r"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err = prog.Eval(ctx, "t/r", nil)
	var te *topdown.Error
	if !errors.As(err, &te) || te.Code != topdown.CancelErr {
		t.Fatalf("got %v, want a cancellation", err)
	}
}

// TestPlanErrors names what cannot be planned or evaluated.
func TestPlanErrors(t *testing.T) {
	mod := ast.MustParseModuleWithOpts("package t\nimport rego.v1\nr := 1\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
	mods := map[string]*ast.Module{"t.rego": mod}
	if _, err := regoplan.Plan(context.Background(), mods, ast.CapabilitiesForThisVersion(), []string{"t/nothing"}); err == nil {
		t.Error("planned an entrypoint with no rule")
	}
	prog, err := regoplan.Plan(context.Background(), mods, ast.CapabilitiesForThisVersion(), []string{"t/r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := prog.Eval(context.Background(), "t/other", nil); err == nil || !strings.Contains(err.Error(), "t/other") {
		t.Errorf("got %v, want an error naming the entrypoint", err)
	}
}

// TestEvalConcurrent shares one program and one input between goroutines: each evaluation has its own machine.
func TestEvalConcurrent(t *testing.T) {
	mod := ast.MustParseModuleWithOpts(`package t
import rego.v1
names contains c.name if some c in input.containers
r := {"n": names, "s": [sprintf("%s:%d", [k, count(v)]) | some k, v in input.labels]}`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	prog, err := regoplan.Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/r"})
	if err != nil {
		t.Fatal(err)
	}
	in := ast.MustParseTerm(`{"containers": [{"name": "a"}, {"name": "b"}], "labels": {"x": "12", "y": "3"}}`)
	want := ast.MustParseTerm(`{"n": {"a", "b"}, "s": ["x:2", "y:1"]}`)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 200 {
				v, ok, err := prog.Eval(context.Background(), "t/r", in)
				if err != nil || !ok || !v.Equal(want) {
					errs <- fmt.Errorf("got %v %v: %w", v, ok, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
