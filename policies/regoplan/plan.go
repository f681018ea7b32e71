// Package regoplan runs Rego through the intermediate representation OPA's planner makes of it (the plan that
// OPA compiles to Wasm), interpreted over the same ast values topdown uses: a policy's rules become straight-line
// blocks of statements with their lookups, loops and built-in calls resolved once, so an admission pays for what
// its rules compute, not for unification. Built-in functions are OPA's own, called as topdown calls them.
package regoplan

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Program is a set of modules planned for some entrypoints; it is immutable and safe for concurrent use.
type Program struct {
	// fields is set when every rule reads input only by its top-level keys (input.resource, never input as a
	// whole): EvalFields then takes those keys' values, with no object made around them for each evaluation.
	fields  bool
	plans   map[string]*function
	strings []*ast.Term
	// byPath finds the function of a rule by its planned path ("g0/a/b/c"), for calls whose path is computed.
	byPath map[string]*function
	files  []string
}

// file names the source file of a statement's location.
func (p *Program) file(i int) string {
	if i >= 0 && i < len(p.files) {
		return p.files[i]
	}
	return ""
}

// Plan compiles modules (by file name) with OPA's planner for the entrypoints (rule paths such as
// "attest/library/no_privileged/violation") under caps. It fails where the planner does (a construct or built-in
// it cannot plan): callers keep topdown for such policies.
func Plan(ctx context.Context, modules map[string]*ast.Module, caps *ast.Capabilities, entrypoints []string) (*Program, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		mod := modules[name]
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: []byte(mod.String()), Parsed: mod})
	}
	c := compile.New().WithTarget(compile.TargetPlan).WithBundle(b).WithCapabilities(caps).
		WithEntrypoints(entrypoints...).WithRegoVersion(ast.RegoV1).WithPruneUnused(true)
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("plan %s: %w", strings.Join(entrypoints, ", "), err)
	}
	var raw []byte
	for _, pm := range c.Bundle().PlanModules {
		raw = pm.Raw
	}
	if raw == nil {
		return nil, fmt.Errorf("plan %s: the planner wrote no plan", strings.Join(entrypoints, ", "))
	}
	var pol ir.Policy
	if err := json.Unmarshal(raw, &pol); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	return load(&pol)
}

// load turns the planner's policy into functions whose calls, built-ins and constants are resolved.
func load(pol *ir.Policy) (*Program, error) {
	p := &Program{plans: map[string]*function{}}
	if pol.Static != nil {
		for _, s := range pol.Static.Strings {
			p.strings = append(p.strings, ast.StringTerm(s.Value))
		}
		for _, f := range pol.Static.Files {
			p.files = append(p.files, f.Value)
		}
	}
	p.byPath = map[string]*function{}
	l := &loader{p: p, funcs: map[string]*function{}, byPath: p.byPath}
	if pol.Funcs != nil {
		// Functions first, so calls resolve whatever order they are listed in.
		for _, f := range pol.Funcs.Funcs {
			fn := &function{ret: int32(f.Return)}
			l.funcs[f.Name] = fn
			if len(f.Path) > 0 {
				l.byPath[strings.Join(f.Path, "/")] = fn
			}
		}
		for _, f := range pol.Funcs.Funcs {
			fn := l.funcs[f.Name]
			l.max = fn.ret
			for _, param := range f.Params {
				fn.params = append(fn.params, l.local(param))
			}
			blocks, err := l.blocks(f.Blocks)
			if err != nil {
				return nil, fmt.Errorf("function %s: %w", f.Name, err)
			}
			fn.blocks, fn.locals = blocks, int(l.max)+1
			fn.memo = len(f.Params) == 2 // a rule of no arguments: one value per evaluation
		}
	}
	fns := slices.Collect(maps.Values(l.funcs))
	if pol.Plans != nil {
		for _, pl := range pol.Plans.Plans {
			l.max = 1
			blocks, err := l.blocks(pl.Blocks)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", pl.Name, err)
			}
			fn := &function{params: []int32{0, 1}, ret: -1, blocks: blocks, locals: int(l.max) + 1}
			directResults(fn)
			p.plans[pl.Name] = fn
			fns = append(fns, fn)
		}
	}
	fold(fns)
	for _, fn := range fns {
		literals(fn)
	}
	p.fields = fieldsOnly(fns)
	if p.fields {
		for _, fn := range fns {
			readFields(fn)
		}
	}
	return p, nil
}

// function is a planned function (a rule, a user function) or an entrypoint's plan.
type function struct {
	params []int32 // the locals its arguments are bound to
	ret    int32   // the local it returns; -1 for a plan, which adds to the result set instead
	blocks []*block
	locals int
	memo   bool
}

type block struct{ instrs []instr }

type opcode uint8

const (
	opReturn opcode = iota
	opCall
	opCallBuiltin
	opCallDynamic
	opBlock
	opBreak
	opDot
	opLen
	opScan
	opNot
	opAssignInt
	opAssign
	opAssignOnce
	opReset
	opMakeNull
	opMakeNumber
	opMakeArray
	opMakeObject
	opMakeSet
	opEqual
	opNotEqual
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opArrayAppend
	opObjectInsert
	opObjectInsertOnce
	opObjectMerge
	opSetAdd
	opWith
	opNop
	opResultAdd
	opResultValue // adds a, the entrypoint's value, to the result set without the object {"result": a} around it
	opField       // target := the input field named b (see Program.fields)
	opArrayOf     // target := the array of x.args' values (a literal array; see literals)
	opObjectOf    // target := the object of x.args' keys and values, in pairs (a literal object; see literals)
)

// usesCold reports whether statements of op read their cold part: calls, withs, field reads, and the statements
// whose conflicts are reported at their location.
func (op opcode) usesCold() bool {
	switch op {
	case opCall, opCallBuiltin, opCallDynamic, opWith, opField, opAssignOnce, opObjectInsertOnce, opObjectMerge, opArrayOf, opObjectOf:
		return true
	}
	return false
}

// operand is a local (term nil) or a constant.
type operand struct {
	local int32
	term  *ast.Term
}

// instr is one statement with everything it needs resolved: its operands, its target local, its nested blocks,
// and in x what few statements use (the function or built-in a call calls, its arguments, a with's path, the
// statement's location). It is kept small (96 bytes) so that a block's statements share cache lines: the webhook
// runs them with caches cooled by the network and the other process between two admissions.
type instr struct {
	op opcode
	// target is the local a statement sets; key and value are the locals a scan binds; source the local it scans
	// or the with's local.
	target, key, value, source int32
	a, b                       operand
	n                          int64
	blocks                     []*block
	x                          *cold
}

// cold is the part of a statement few statements use.
type cold struct {
	fn      *function
	builtin topdown.BuiltinFunc
	args    []operand
	path    []int
	dynamic []operand
	loc     ir.Location
	name    string // the input field opField reads
}

type loader struct {
	p      *Program
	funcs  map[string]*function
	byPath map[string]*function
	max    int32
}

func (l *loader) local(x ir.Local) int32 {
	if int32(x) > l.max {
		l.max = int32(x)
	}
	return int32(x)
}

func (l *loader) operand(o ir.Operand) (operand, error) {
	val := o.Value
	// A plan read from JSON holds pointers to its operands' values.
	switch v := val.(type) {
	case *ir.Local:
		val = *v
	case *ir.StringIndex:
		val = *v
	case *ir.Bool:
		val = *v
	}
	switch v := val.(type) {
	case ir.Local:
		return operand{local: l.local(v)}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(l.p.strings) {
			return operand{}, fmt.Errorf("string constant %d of %d", v, len(l.p.strings))
		}
		return operand{term: l.p.strings[v]}, nil
	case ir.Bool:
		return operand{term: ast.BooleanTerm(bool(v))}, nil
	}
	return operand{}, fmt.Errorf("operand %v of an unknown kind", o.Value)
}

func (l *loader) blocks(bs []*ir.Block) ([]*block, error) {
	out := make([]*block, len(bs))
	for i, b := range bs {
		var err error
		if out[i], err = l.block(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *loader) block(b *ir.Block) (*block, error) {
	out := &block{instrs: make([]instr, 0, len(b.Stmts))}
	for _, s := range b.Stmts {
		in, err := l.instr(s)
		if err != nil {
			return nil, err
		}
		out.instrs = append(out.instrs, in)
	}
	return out, nil
}

// instr resolves one statement.
func (l *loader) instr(s ir.Stmt) (instr, error) {
	in := instr{x: &cold{}}
	var err error
	if loc := s.GetLocation(); loc != nil {
		in.x.loc = *loc
	}
	defer func() {
		if !in.op.usesCold() {
			in.x = nil
		}
	}()
	two := func(a, b ir.Operand) {
		if err == nil {
			in.a, err = l.operand(a)
		}
		if err == nil {
			in.b, err = l.operand(b)
		}
	}
	one := func(a ir.Operand) {
		if err == nil {
			in.a, err = l.operand(a)
		}
	}
	nested := func(b *ir.Block) {
		if err == nil {
			var nb *block
			nb, err = l.block(b)
			in.blocks = []*block{nb}
		}
	}
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		in.op, in.source = opReturn, l.local(s.Source)
	case *ir.CallStmt:
		in.target = l.local(s.Result)
		for _, a := range s.Args {
			o, e := l.operand(a)
			if e != nil {
				return in, e
			}
			in.x.args = append(in.x.args, o)
		}
		if fn, ok := l.funcs[s.Func]; ok {
			in.op, in.x.fn = opCall, fn
			break
		}
		bi := topdown.GetBuiltin(s.Func)
		if bi == nil {
			return in, fmt.Errorf("call of %s: no such function or built-in", s.Func)
		}
		in.op, in.x.builtin = opCallBuiltin, remember(s.Func, bi)
	case *ir.CallDynamicStmt:
		in.op, in.target = opCallDynamic, l.local(s.Result)
		for _, a := range s.Args {
			in.x.args = append(in.x.args, operand{local: l.local(a)})
		}
		for _, p := range s.Path {
			o, e := l.operand(p)
			if e != nil {
				return in, e
			}
			in.x.dynamic = append(in.x.dynamic, o)
		}
	case *ir.BlockStmt:
		in.op = opBlock
		in.blocks, err = l.blocks(s.Blocks)
	case *ir.BreakStmt:
		in.op, in.n = opBreak, int64(s.Index)
	case *ir.DotStmt:
		in.op, in.target = opDot, l.local(s.Target)
		two(s.Source, s.Key)
	case *ir.LenStmt:
		in.op, in.target = opLen, l.local(s.Target)
		one(s.Source)
	case *ir.ScanStmt:
		in.op, in.source, in.key, in.value = opScan, l.local(s.Source), l.local(s.Key), l.local(s.Value)
		nested(s.Block)
	case *ir.NotStmt:
		in.op = opNot
		nested(s.Block)
	case *ir.AssignIntStmt:
		in.op, in.n, in.target = opAssignInt, s.Value, l.local(s.Target)
	case *ir.AssignVarStmt:
		in.op, in.target = opAssign, l.local(s.Target)
		one(s.Source)
	case *ir.AssignVarOnceStmt:
		in.op, in.target = opAssignOnce, l.local(s.Target)
		one(s.Source)
	case *ir.ResetLocalStmt:
		in.op, in.target = opReset, l.local(s.Target)
	case *ir.MakeNullStmt:
		in.op, in.target = opMakeNull, l.local(s.Target)
	case *ir.MakeNumberIntStmt:
		in.op, in.target, in.a = opMakeNumber, l.local(s.Target), operand{term: ast.IntNumberTerm(int(s.Value))}
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(l.p.strings) {
			return in, fmt.Errorf("number constant %d of %d", s.Index, len(l.p.strings))
		}
		lit := string(l.p.strings[s.Index].Value.(ast.String))
		in.op, in.target, in.a = opMakeNumber, l.local(s.Target), operand{term: ast.NumberTerm(json.Number(lit))}
	case *ir.MakeArrayStmt:
		in.op, in.target, in.n = opMakeArray, l.local(s.Target), int64(s.Capacity)
	case *ir.MakeObjectStmt:
		in.op, in.target = opMakeObject, l.local(s.Target)
	case *ir.MakeSetStmt:
		in.op, in.target = opMakeSet, l.local(s.Target)
	case *ir.EqualStmt:
		in.op = opEqual
		two(s.A, s.B)
	case *ir.NotEqualStmt:
		in.op = opNotEqual
		two(s.A, s.B)
	case *ir.IsArrayStmt:
		in.op = opIsArray
		one(s.Source)
	case *ir.IsObjectStmt:
		in.op = opIsObject
		one(s.Source)
	case *ir.IsSetStmt:
		in.op = opIsSet
		one(s.Source)
	case *ir.IsDefinedStmt:
		in.op, in.source = opIsDefined, l.local(s.Source)
	case *ir.IsUndefinedStmt:
		in.op, in.source = opIsUndefined, l.local(s.Source)
	case *ir.ArrayAppendStmt:
		in.op, in.target = opArrayAppend, l.local(s.Array)
		one(s.Value)
	case *ir.ObjectInsertStmt:
		in.op, in.target = opObjectInsert, l.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectInsertOnceStmt:
		in.op, in.target = opObjectInsertOnce, l.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectMergeStmt:
		in.op, in.target, in.key, in.value = opObjectMerge, l.local(s.Target), l.local(s.A), l.local(s.B)
	case *ir.SetAddStmt:
		in.op, in.target = opSetAdd, l.local(s.Set)
		one(s.Value)
	case *ir.WithStmt:
		in.op, in.source, in.x.path = opWith, l.local(s.Local), s.Path
		for _, p := range s.Path {
			if p < 0 || p >= len(l.p.strings) {
				return in, fmt.Errorf("with path string %d of %d", p, len(l.p.strings))
			}
		}
		one(s.Value)
		nested(s.Block)
	case *ir.NopStmt:
		in.op = opNop
	case *ir.ResultSetAddStmt:
		in.op, in.source = opResultAdd, l.local(s.Value)
	default:
		return in, fmt.Errorf("statement %T is not one this machine runs", s)
	}
	return in, err
}
