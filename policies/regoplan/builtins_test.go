package regoplan

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestRememberedBuiltins answers a repeated call of a pure built-in from the kept result, a failure as undefined
// again, and a call with a longer argument than kept by calling the built-in.
func TestRememberedBuiltins(t *testing.T) {
	mod := ast.MustParseModuleWithOpts(`package t
import rego.v1
q := units.parse(input.q)
j := json.unmarshal(input.j)
m := regex.match(input.p, input.m)`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	prog, err := Plan(context.Background(), map[string]*ast.Module{"t.rego": mod}, ast.CapabilitiesForThisVersion(), []string{"t/q", "t/j", "t/m"})
	if err != nil {
		t.Fatal(err)
	}
	long := `{"k": "` + strings.Repeat("x", 20<<10) + `"}`
	cases := []struct {
		entry, arg string
		pattern    string // regex.match's first argument
		want       string // "" for undefined
		kept       bool
	}{
		{"t/q", "1500m", "", "1.5", true},
		{"t/q", "lots", "", "", true},
		{"t/j", `{"version": 1}`, "", `{"version": 1}`, true},
		{"t/j", `{not json`, "", "", true},
		{"t/j", long, "", `{"k": "` + strings.Repeat("x", 20<<10) + `"}`, false},
		{"t/m", "500m", `^[0-9]+m$`, "true", true},
		{"t/m", "1Gi", `^[0-9]+m$`, "false", true},   // the same pattern, another value: its own result
		{"t/m", "500m", `^[0-9]+Gi$`, "false", true}, // the same value, another pattern: its own result
		{"t/m", "500m", `^[0-9+$`, "", true},         // an invalid pattern: undefined, again
		{"t/m", strings.Repeat("5", 300), `^[0-9]+$`, "true", false},
	}
	for _, tc := range cases {
		field := tc.entry[len("t/"):]
		in := ast.NewTerm(ast.NewObject([2]*ast.Term{ast.StringTerm(field), ast.StringTerm(tc.arg)},
			[2]*ast.Term{ast.StringTerm("p"), ast.StringTerm(tc.pattern)}))
		for round := range 2 {
			v, ok, err := prog.Eval(context.Background(), tc.entry, in)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == "" && ok:
				t.Errorf("%s(%.20q) round %d: got %v, want undefined", tc.entry, tc.arg, round, v)
			case tc.want != "" && (!ok || !v.Equal(ast.MustParseTerm(tc.want))):
				t.Errorf("%s(%.20q) round %d: got %v (defined %v), want %s", tc.entry, tc.arg, round, v, ok, tc.want)
			}
		}
		name := map[string]string{"t/q": "units.parse", "t/j": "json.unmarshal", "t/m": "regex.match"}[tc.entry]
		key := rememberedKey{name, tc.arg, ""}
		if tc.entry == "t/m" {
			key = rememberedKey{name, tc.pattern, tc.arg}
		}
		if kept := results.Contains(key); kept != tc.kept {
			t.Errorf("%s(%.20q) kept %v, want %v", name, tc.arg, kept, tc.kept)
		}
	}
}
