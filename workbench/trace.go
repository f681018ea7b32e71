package workbench

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/continuums/attest/policies"
)

// explainModes are OPA's --explain filters, as `attest policy trace --explain` offers them.
var explainModes = map[string]func([]*topdown.Event) []*topdown.Event{
	"full":  lineage.Full,
	"fails": lineage.Fails,
	"debug": lineage.Debug,
}

// resultRules are the rules whose values a policy reports through (the engine's result rules).
var resultRules = []string{"violation", "deny", "warn"}

// tracer evaluates one package's result rules with OPA's tracer, compiled from the same sources and with the
// same capabilities as the engine.
type tracer struct {
	compiler *ast.Compiler
	pkg      ast.Ref
	rules    []string
	// sets are the rules that build sets (`violation contains x`): the query's bindings give them as arrays.
	sets map[string]bool
}

func newTracer(srcs []policies.Source, file string) (*tracer, error) {
	modules := make(map[string]*ast.Module, len(srcs))
	var target *ast.Module
	for _, src := range srcs {
		mod, err := policies.ParseSource(src)
		if err != nil {
			return nil, err
		}
		modules[src.Name] = mod
		if src.Name == file {
			target = mod
		}
	}
	if target == nil {
		return nil, fmt.Errorf("no source named %s", file)
	}
	compiler := ast.NewCompiler().WithCapabilities(policies.PureCapabilities())
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile: %w", compiler.Errors)
	}
	t := &tracer{compiler: compiler, pkg: target.Package.Path, sets: map[string]bool{}}
	defined := map[string]bool{}
	for _, r := range target.Rules {
		name := r.Head.Ref()[0].Value.String()
		defined[name] = true
		if r.Head.RuleKind() == ast.MultiValue {
			t.sets[name] = true
		}
	}
	for _, r := range resultRules {
		if defined[r] {
			t.rules = append(t.rules, r)
		}
	}
	return t, nil
}

// PackageRef is the package the traced policy is in, as Rego writes it (data.attest.library.no_privileged).
func (t *tracer) packageRef() string { return t.pkg.String() }

// eval returns the value of each result rule the package defines for input, and the trace filtered by explain
// ("" for none).
func (t *tracer) eval(ctx context.Context, input map[string]any, explain string) (map[string]ast.Value, []string, error) {
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		return nil, nil, fmt.Errorf("input: %w", err)
	}
	values := map[string]ast.Value{}
	if len(t.rules) == 0 {
		return values, nil, nil
	}
	query := make([]string, len(t.rules))
	for i, r := range t.rules {
		query[i] = r + " = " + t.pkg.Append(ast.StringTerm(r)).String()
	}
	opts := []func(*rego.Rego){rego.Compiler(t.compiler), rego.Query(strings.Join(query, "; ")), rego.ParsedInput(value)}
	var buf *topdown.BufferTracer
	filter := explainModes[explain]
	if filter != nil {
		buf = topdown.NewBufferTracer()
		opts = append(opts, rego.QueryTracer(buf))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate: %w", err)
	}
	if len(rs) > 0 {
		for _, r := range t.rules {
			v, err := ast.InterfaceToValue(rs[0].Bindings[r])
			if err != nil {
				return nil, nil, fmt.Errorf("rule %s: %w", r, err)
			}
			if arr, ok := v.(*ast.Array); ok && t.sets[r] {
				elems := make([]*ast.Term, 0, arr.Len())
				arr.Foreach(func(e *ast.Term) { elems = append(elems, e) })
				v = ast.NewSet(elems...)
			}
			values[r] = v
		}
	}
	if buf == nil {
		return values, nil, nil
	}
	var text bytes.Buffer
	topdown.PrettyTraceWithOpts(&text, filter(*buf), topdown.PrettyTraceOptions{Locations: true, ExprVariables: true})
	return values, strings.Split(strings.TrimRight(text.String(), "\n"), "\n"), nil
}
