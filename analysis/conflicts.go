// Package analysis reads policy sources and configuration for what no single evaluation shows: policies that
// can never all pass, and configuration that contradicts itself.
package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// Conflict is one contradiction found.
type Conflict struct {
	// Kind is bounds (policies that can never all pass for one value), policyconfig (PolicyConfigs setting one
	// scalar differently) or duplicate (the same check twice).
	Kind     string   `json:"kind"`
	Policies []string `json:"policies,omitempty"`
	// Path is the input path both constrain (bounds).
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Details name each side with its place (file:line).
	Details []string `json:"details,omitempty"`
}

// bound is what one policy's denying rule requires of a numeric input path to pass: value in [lo, hi].
type bound struct {
	policy, file string
	line         int
	lo, hi       float64
	loOpen       bool
	hiOpen       bool
	text         string // the comparison as written, e.g. "replicas < min_replicas"
	requires     string // what passing needs, e.g. ">= 2"
}

// Bounds finds policies whose denying rules (violation, deny) together leave no value of a numeric input path
// that passes: a rule body that denies on one comparison of a path with a number (or a numeric parameter) is read
// as requiring the opposite, and the requirements of every enabled policy on each path are intersected. Other
// conditions of the bodies (kinds, namespaces) are not weighed: "never" holds for an object every such rule
// applies to.
func Bounds(engine *policies.Engine, sources []policies.Source, cfg *config.Config) ([]Conflict, error) {
	text := map[string]string{}
	for _, s := range sources {
		text[s.Name] = s.Text
	}
	byPath := map[string][]bound{}
	for _, p := range engine.Policies() {
		src, ok := text[p.File]
		if !ok {
			continue
		}
		s := cfg.Policies[p.Name]
		if s.Mode == policies.ModeOff || s.Mode == "" {
			continue
		}
		mod, err := policies.ParseSource(policies.Source{Name: p.File, Text: src})
		if err != nil {
			return nil, err
		}
		for path, b := range policyBounds(p.Name, mod, s.Params) {
			byPath[path] = append(byPath[path], b...)
		}
	}
	var out []Conflict
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		bs := byPath[path]
		for i := 0; i < len(bs); i++ {
			for j := i + 1; j < len(bs); j++ {
				a, b := bs[i], bs[j]
				if a.policy == b.policy || !disjoint(a, b) {
					continue
				}
				out = append(out, Conflict{
					Kind: "bounds", Policies: []string{a.policy, b.policy}, Path: path,
					Message: fmt.Sprintf("%s and %s can never both pass: %s must be %s for %s and %s for %s", a.policy, b.policy, path, a.requires, a.policy, b.requires, b.policy),
					Details: []string{
						fmt.Sprintf("%s:%d: %s denies when %s", a.file, a.line, a.policy, a.text),
						fmt.Sprintf("%s:%d: %s denies when %s", b.file, b.line, b.policy, b.text),
					},
				})
			}
		}
	}
	return out, nil
}

// disjoint reports whether no number satisfies both bounds.
func disjoint(a, b bound) bool {
	lo, loOpen := a.lo, a.loOpen
	if b.lo > lo || (b.lo == lo && b.loOpen) {
		lo, loOpen = b.lo, b.loOpen
	}
	hi, hiOpen := a.hi, a.hiOpen
	if b.hi < hi || (b.hi == hi && b.hiOpen) {
		hi, hiOpen = b.hi, b.hiOpen
	}
	return lo > hi || (lo == hi && (loOpen || hiOpen))
}

// policyBounds reads the denying rules of one module: each body with exactly one numeric comparison of an input
// path yields the bound passing needs.
func policyBounds(policy string, mod *ast.Module, params map[string]any) map[string][]bound {
	// Package-level constants and parameters: `min_replicas := input.params.min_replicas`, `limit := 3`.
	consts := map[string]float64{}
	for _, r := range mod.Rules {
		if r.Head.Value == nil || len(r.Body) != 1 || r.Body[0].String() != "true" {
			continue
		}
		name := r.Head.Ref()[0].Value.String()
		if n, ok := number(r.Head.Value, params); ok {
			consts[name] = n
		}
	}
	out := map[string][]bound{}
	for _, r := range mod.Rules {
		name := r.Head.Ref()[0].Value.String()
		if name != "violation" && name != "deny" {
			continue
		}
		paths := map[string]string{} // body variable → input path it holds
		var found []bound
		var foundPath string
		ast.WalkExprs(r.Body, func(e *ast.Expr) bool {
			if e.IsAssignment() || e.IsEquality() {
				if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) == 3 {
					if v, ok := terms[1].Value.(ast.Var); ok {
						if p := inputPath(terms[2], paths); p != "" {
							paths[string(v)] = p
						}
					}
				}
				return false
			}
			op, ok := comparison(e)
			if !ok || e.Negated {
				return false
			}
			terms := e.Operands()
			left, right := terms[0], terms[1]
			lp, rp := termPath(left, paths), termPath(right, paths)
			ln, lok := operandNumber(left, consts, params)
			rn, rok := operandNumber(right, consts, params)
			var path string
			var n float64
			switch {
			case lp != "" && rok:
				path, n = lp, rn
			case rp != "" && lok:
				path, n, op = rp, ln, flip(op)
			default:
				return false
			}
			b, ok := passing(op, n)
			if !ok {
				return false
			}
			b.policy, b.line, b.text = policy, e.Location.Row, strings.TrimSpace(string(e.Location.Text))
			b.file = e.Location.File
			found = append(found, b)
			foundPath = path
			return false
		})
		if len(found) == 1 {
			out[foundPath] = append(out[foundPath], found[0])
		}
	}
	return out
}

// comparison names a numeric comparison expression's operator.
func comparison(e *ast.Expr) (string, bool) {
	if !e.IsCall() || len(e.Operands()) != 2 {
		return "", false
	}
	switch op := e.Operator().String(); op {
	case "lt", "lte", "gt", "gte", "equal", "neq":
		return op, true
	}
	return "", false
}

func flip(op string) string {
	return map[string]string{"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte", "equal": "equal", "neq": "neq"}[op]
}

// passing is the bound a value must meet for `value op n` to be false: what the denying rule lets pass.
func passing(op string, n float64) (bound, bool) {
	inf := math.Inf(1)
	f := func(v float64) string { return fmt.Sprint(v) }
	switch op {
	case "lt":
		return bound{lo: n, hi: inf, requires: ">= " + f(n)}, true
	case "lte":
		return bound{lo: n, loOpen: true, hi: inf, requires: "> " + f(n)}, true
	case "gt":
		return bound{lo: -inf, hi: n, requires: "<= " + f(n)}, true
	case "gte":
		return bound{lo: -inf, hi: n, hiOpen: true, requires: "< " + f(n)}, true
	case "neq":
		return bound{lo: n, hi: n, requires: "== " + f(n)}, true
	}
	return bound{}, false // == denies one value: any other passes
}

// inputPath is the input path a term reads: a ref rooted at input (variables in it written [_]), or
// object.get(<input ref>, "key", default).
func inputPath(t *ast.Term, vars map[string]string) string {
	switch v := t.Value.(type) {
	case ast.Ref:
		return refPath(v, vars)
	case ast.Call:
		if len(v) == 4 && v[0].String() == "object.get" {
			base := inputPath(v[1], vars)
			if key, ok := v[2].Value.(ast.String); ok && base != "" {
				return base + "." + string(key)
			}
		}
	}
	return ""
}

func termPath(t *ast.Term, vars map[string]string) string {
	if v, ok := t.Value.(ast.Var); ok {
		return vars[string(v)]
	}
	return inputPath(t, vars)
}

func refPath(r ast.Ref, vars map[string]string) string {
	head := r[0].Value.String()
	base := ""
	switch {
	case head == "input":
		base = "input"
	case vars[head] != "":
		base = vars[head]
	default:
		return ""
	}
	var b strings.Builder
	b.WriteString(base)
	for _, t := range r[1:] {
		switch k := t.Value.(type) {
		case ast.String:
			b.WriteString("." + string(k))
		default:
			b.WriteString("[_]")
		}
	}
	if strings.HasPrefix(b.String(), "input.params") {
		return "" // a parameter, not a value of the object
	}
	return b.String()
}

// operandNumber is a number constant, a package constant, or a numeric parameter (input.params.x).
func operandNumber(t *ast.Term, consts map[string]float64, params map[string]any) (float64, bool) {
	if v, ok := t.Value.(ast.Var); ok {
		n, ok := consts[string(v)]
		return n, ok
	}
	return number(t, params)
}

func number(t *ast.Term, params map[string]any) (float64, bool) {
	switch v := t.Value.(type) {
	case ast.Number:
		f, ok := v.Float64()
		return f, ok
	case ast.Ref:
		if len(v) == 3 && v[0].Value.String() == "input" && v[1].Value.Compare(ast.String("params")) == 0 {
			if key, ok := v[2].Value.(ast.String); ok {
				switch p := params[string(key)].(type) {
				case float64:
					return p, true
				case int:
					return float64(p), true
				case int64:
					return float64(p), true
				case json.Number:
					f, err := p.Float64()
					return f, err == nil
				}
			}
		}
	}
	return 0, false
}

// PolicyConfigs finds PolicyConfigs that set one scalar parameter of a policy to different values, as the cluster
// would (config.Overlay reports the conflict on each PolicyConfig and keeps the last good value).
func PolicyConfigs(ctx context.Context, lib []policies.Source, base *config.Config, pcs []v1alpha1.PolicyConfig) []Conflict {
	if len(pcs) == 0 {
		return nil
	}
	out := config.Overlay(ctx, lib, base, nil, config.Resources{Configs: pcs})
	var conflicts []Conflict
	seen := map[string]bool{}
	names := make([]string, 0, len(out.Resources))
	for k := range out.Resources {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		st := out.Resources[k]
		if st.Valid || !strings.Contains(st.Message, "is set differently by PolicyConfigs") || seen[st.Message] {
			continue
		}
		seen[st.Message] = true
		var policy string
		for _, pc := range pcs {
			if "PolicyConfig/"+pc.Name == k {
				policy = pc.Spec.Policy
			}
		}
		conflicts = append(conflicts, Conflict{Kind: "policyconfig", Policies: []string{policy}, Message: policy + ": " + st.Message})
	}
	return conflicts
}
