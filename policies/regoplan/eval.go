package regoplan

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// Break levels a block reports to the construct around it: done ran to its end; a value >= 0 leaves that many
// enclosing blocks beyond the current one (0: the current block ends, as a statement that is undefined ends it);
// returned unwinds to the function, whose return local is set.
const (
	done     = -1
	returned = 1 << 30
)

// checkEvery is how many loop iterations and calls run between two looks at the context.
const checkEvery = 1024

// emptySet is the value of every set MakeSet makes until its first SetAdd, which replaces it in the set's term
// (every local assigned from the set shares its term): most such sets (a passing policy's violations, a
// comprehension over nothing) stay empty, and making each cost three allocations. emptyObject is the same for
// MakeObject and its inserts (an object comprehension of parameters that are not set), and emptyArray for an
// array comprehension (ArrayAppend puts a new array in the term). None is ever changed.
var (
	emptySet    = ast.NewSet()
	emptyObject = ast.NewObject()
	emptyArray  = ast.NewArray() // no capacity: Array.Append copies it rather than writing into it
)

// Eval runs the plan of entrypoint over input (data is empty: policies receive everything as input) and returns
// the entrypoint's value, or false when it is undefined. Errors are those topdown reports in its default, lax
// mode: a built-in that fails makes its expression undefined, a rule producing conflicting values is an error,
// and so is the context ending.
func (p *Program) Eval(ctx context.Context, entrypoint string, input *ast.Term) (*ast.Term, bool, error) {
	if p.fields {
		// The rules read only input's fields: read them from the object.
		var fields []Field
		if input != nil {
			obj, ok := input.Value.(ast.Object)
			if !ok {
				return p.eval(ctx, entrypoint, nil, nil) // no field of a value that is not an object is defined
			}
			fields = make([]Field, 0, obj.Len())
			obj.Foreach(func(k, v *ast.Term) {
				if name, isStr := k.Value.(ast.String); isStr {
					fields = append(fields, Field{Name: string(name), Value: v})
				}
			})
		}
		return p.eval(ctx, entrypoint, nil, fields)
	}
	return p.eval(ctx, entrypoint, input, nil)
}

// Field is one top-level field of an evaluation's input.
type Field struct {
	Name  string
	Value *ast.Term
}

// ReadsFields reports whether the program's rules read input only by its top-level fields (input.resource, never
// input as a whole), so EvalFields can take them without an object around them.
func (p *Program) ReadsFields() bool { return p.fields }

// EvalFields is Eval of an input object holding fields (at most one of each name), for a program that
// ReadsFields; the object is not made. For another program it makes it.
func (p *Program) EvalFields(ctx context.Context, entrypoint string, fields []Field) (*ast.Term, bool, error) {
	if !p.fields {
		terms := make([][2]*ast.Term, len(fields))
		for i, f := range fields {
			terms[i] = [2]*ast.Term{ast.StringTerm(f.Name), f.Value}
		}
		return p.eval(ctx, entrypoint, ast.ObjectTerm(terms...), nil)
	}
	return p.eval(ctx, entrypoint, nil, fields)
}

func (p *Program) eval(ctx context.Context, entrypoint string, input *ast.Term, fields []Field) (*ast.Term, bool, error) {
	plan, ok := p.plans[entrypoint]
	if !ok {
		return nil, false, fmt.Errorf("no plan for entrypoint %s", entrypoint)
	}
	m := machines.Get().(*machine)
	defer m.release()
	m.ctx, m.p = ctx, p
	m.fields = append(m.fields[:0], fields...)
	if m.cache == nil {
		m.cache = builtins.Cache{}
	}
	m.bctx = topdown.BuiltinContext{Context: ctx, Seed: rand.Reader, Cache: m.cache}
	locals := m.frame(plan.locals)
	locals[0], locals[1] = input, emptyData // input nil: undefined, as in a test without `with input as`
	if _, err := m.run(plan, locals); err != nil {
		return nil, false, err
	}
	if len(m.values) > 0 {
		return m.values[0], true, nil
	}
	for _, r := range m.results {
		obj, ok := r.Value.(ast.Object)
		if !ok {
			continue
		}
		if v := obj.Get(resultKey); v != nil {
			return v, true, nil
		}
	}
	return nil, false, nil
}

var (
	emptyData = ast.ObjectTerm()
	resultKey = ast.StringTerm("result")
	machines  = sync.Pool{New: func() any { return &machine{memo: map[*function]*ast.Term{}} }}
	small     = func() [64]*ast.Term {
		var out [64]*ast.Term
		for i := range out {
			out[i] = ast.IntNumberTerm(i)
		}
		return out
	}()
)

// machine is one evaluation's state: the locals of its calls, the values of rules of no arguments (which do not
// change within an evaluation but for `with`), and the result set.
type machine struct {
	ctx     context.Context
	p       *Program
	bctx    topdown.BuiltinContext
	stack   []*ast.Term
	sp      int
	memo    map[*function]*ast.Term
	cache   builtins.Cache // the built-ins' per-evaluation state, emptied for the next
	with    int
	results []*ast.Term
	values  []*ast.Term // the entrypoint's values, added by opResultValue
	fields  []Field     // the input's fields, for a program that reads only them
	out     *ast.Term
	iter    func(*ast.Term) error
	args    []*ast.Term
	steps   int
}

func (m *machine) release() {
	clear(m.stack[:m.sp])
	m.sp = 0
	clear(m.memo)
	clear(m.cache)
	clear(m.results)
	m.results = m.results[:0]
	clear(m.values)
	m.values = m.values[:0]
	clear(m.fields)
	m.fields = m.fields[:0]
	m.ctx, m.p, m.bctx, m.out, m.with, m.steps = nil, nil, topdown.BuiltinContext{}, nil, 0, 0
	machines.Put(m)
}

// frame takes n cleared locals from the stack; pop gives them back.
func (m *machine) frame(n int) []*ast.Term {
	if m.sp+n > len(m.stack) {
		grown := make([]*ast.Term, max(2*len(m.stack), m.sp+n, 256))
		copy(grown, m.stack[:m.sp])
		m.stack = grown
	}
	f := m.stack[m.sp : m.sp+n : m.sp+n]
	m.sp += n
	return f
}

func (m *machine) pop(n int) {
	clear(m.stack[m.sp-n : m.sp])
	m.sp -= n
}

// tick looks at the context every checkEvery steps.
func (m *machine) tick() error {
	m.steps++
	if m.steps%checkEvery != 0 {
		return nil
	}
	if err := m.ctx.Err(); err != nil {
		return &topdown.Error{Code: topdown.CancelErr, Message: "caller cancelled query execution", Location: nil}
	}
	return nil
}

// run executes a function's blocks in order over its locals and returns its return local (nil: undefined).
func (m *machine) run(fn *function, locals []*ast.Term) (*ast.Term, error) {
	for _, b := range fn.blocks {
		k, err := m.block(b, locals)
		if err != nil {
			return nil, err
		}
		if k == returned || k > 0 {
			break
		}
	}
	if fn.ret < 0 {
		return nil, nil
	}
	return locals[fn.ret], nil
}

// call runs fn with args, from the memo for a rule of no arguments outside any `with`.
func (m *machine) call(fn *function, args []*ast.Term) (*ast.Term, error) {
	if err := m.tick(); err != nil {
		return nil, err
	}
	memo := fn.memo && m.with == 0
	if memo {
		if v, ok := m.memo[fn]; ok {
			return v, nil
		}
	}
	locals := m.frame(fn.locals)
	for i, param := range fn.params {
		locals[param] = args[i]
	}
	v, err := m.run(fn, locals)
	m.pop(fn.locals)
	if err != nil {
		return nil, err
	}
	if memo {
		m.memo[fn] = v
	}
	return v, nil
}

func read(o operand, locals []*ast.Term) *ast.Term {
	if o.term != nil {
		return o.term
	}
	return locals[o.local]
}

// block runs b's statements over the frame's locals lv; see done and returned for what it reports.
func (m *machine) block(b *block, lv []*ast.Term) (int, error) {
	for i := range b.instrs {
		in := &b.instrs[i]
		switch in.op {
		case opReturn:
			return returned, nil
		case opCall, opCallBuiltin, opCallDynamic:
			v, err := m.invoke(in, lv)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil // undefined
			}
			lv[in.target] = v
		case opBlock:
			for _, nb := range in.blocks {
				k, err := m.block(nb, lv)
				if err != nil {
					return 0, err
				}
				if k == returned {
					return returned, nil
				}
				if k > 0 {
					return k - 1, nil
				}
			}
		case opBreak:
			return int(in.n), nil
		case opDot:
			v := dot(read(in.a, lv), read(in.b, lv))
			if v == nil {
				return 0, nil
			}
			lv[in.target] = v
		case opField:
			v := m.field(in.x.name)
			if v == nil {
				return 0, nil
			}
			lv[in.target] = v
		case opLen:
			n, ok := length(read(in.a, lv))
			if !ok {
				return 0, nil
			}
			lv[in.target] = intTerm(n)
		case opScan:
			k, err := m.scan(in, lv)
			if err != nil || k != done {
				return k, err
			}
		case opNot:
			k, err := m.block(in.blocks[0], lv)
			if err != nil {
				return 0, err
			}
			switch {
			case k == returned:
				return returned, nil
			case k == done:
				return 0, nil // the negated block held: not is undefined
			case k > 0:
				return k - 1, nil
			}
		case opAssignInt:
			lv[in.target] = intTerm(int(in.n))
		case opAssign:
			lv[in.target] = read(in.a, lv)
		case opAssignOnce:
			v := read(in.a, lv)
			if prev := lv[in.target]; prev != nil && v != nil && prev.Value.Compare(v.Value) != 0 {
				return 0, m.conflict(in, "produced conflicting values")
			}
			lv[in.target] = v
		case opReset:
			lv[in.target] = nil
		case opMakeNull:
			lv[in.target] = ast.InternedNullTerm // no statement changes a null term's value
		case opMakeNumber:
			lv[in.target] = in.a.term
		case opMakeArray:
			if in.n == 0 { // a comprehension's: Append copies the array, so the empty one is never changed
				lv[in.target] = &ast.Term{Value: emptyArray}
			} else {
				lv[in.target] = ast.NewTerm(ast.NewArrayWithCapacity(int(in.n)))
			}
		case opArrayOf:
			elems := make([]*ast.Term, len(in.x.args))
			for k, o := range in.x.args {
				if elems[k] = read(o, lv); elems[k] == nil {
					return 0, fmt.Errorf("append an undefined value to an array")
				}
			}
			lv[in.target] = ast.ArrayTerm(elems...)
		case opObjectOf:
			var buf [8][2]*ast.Term
			pairs := buf[:0]
			for k := 0; k+1 < len(in.x.args); k += 2 {
				key, v := read(in.x.args[k], lv), read(in.x.args[k+1], lv)
				if key == nil || v == nil {
					return 0, fmt.Errorf("insert an undefined key or value into an object")
				}
				pairs = append(pairs, [2]*ast.Term{key, v})
			}
			lv[in.target] = ast.NewTerm(ast.NewObject(pairs...))
		case opMakeObject:
			lv[in.target] = &ast.Term{Value: emptyObject} // an object of its own at its first insert (see emptySet)
		case opMakeSet:
			lv[in.target] = &ast.Term{Value: emptySet} // a set of its own at its first add (see emptySet)
		case opEqual, opNotEqual:
			a, b := read(in.a, lv), read(in.b, lv)
			if a == nil || b == nil || (a.Value.Compare(b.Value) == 0) != (in.op == opEqual) {
				return 0, nil
			}
		case opIsArray, opIsObject, opIsSet:
			v := read(in.a, lv)
			if v == nil || !isKind(in.op, v.Value) {
				return 0, nil
			}
		case opIsDefined:
			if lv[in.source] == nil {
				return 0, nil
			}
		case opIsUndefined:
			if lv[in.source] != nil {
				return 0, nil
			}
		case opArrayAppend:
			arr, ok := lv[in.target].Value.(*ast.Array)
			if !ok {
				return 0, fmt.Errorf("append to a %s, not an array", ast.ValueName(lv[in.target].Value))
			}
			lv[in.target].Value = arr.Append(read(in.a, lv))
		case opObjectInsert, opObjectInsertOnce:
			obj, ok := lv[in.target].Value.(ast.Object)
			if !ok {
				return 0, fmt.Errorf("insert into a %s, not an object", ast.ValueName(lv[in.target].Value))
			}
			k, v := read(in.a, lv), read(in.b, lv)
			if in.op == opObjectInsertOnce {
				if prev := obj.Get(k); prev != nil && prev.Value.Compare(v.Value) != 0 {
					return 0, m.conflict(in, "object keys must be unique")
				}
			}
			if obj == emptyObject { // as for sets: the term is MakeObject's own
				obj = ast.NewObject()
				lv[in.target].Value = obj
			}
			obj.Insert(k, v)
		case opObjectMerge:
			a, okA := lv[in.key].Value.(ast.Object)
			b, okB := lv[in.value].Value.(ast.Object)
			if !okA || !okB {
				return 0, m.conflict(in, "merge of values that are not both objects")
			}
			merged, ok := a.Merge(b)
			if !ok {
				return 0, m.conflict(in, "object keys must be unique")
			}
			lv[in.target] = ast.NewTerm(merged)
		case opSetAdd:
			set, ok := lv[in.target].Value.(ast.Set)
			if !ok {
				return 0, fmt.Errorf("add to a %s, not a set", ast.ValueName(lv[in.target].Value))
			}
			if set == emptySet {
				// The term is MakeSet's own, shared by every local assigned from it: they all see the new set.
				set = ast.NewSet()
				lv[in.target].Value = set
			}
			set.Add(read(in.a, lv))
		case opWith:
			k, err := m.withBlock(in, lv)
			if err != nil || k != done {
				return k, err
			}
		case opNop:
		case opResultAdd:
			m.results = append(m.results, lv[in.source])
		case opResultValue:
			if v := read(in.a, lv); v != nil {
				m.values = append(m.values, v)
			}
		}
	}
	return done, nil
}

// field is the input's field name; nil when it has none.
func (m *machine) field(name string) *ast.Term {
	for i := range m.fields {
		if m.fields[i].Name == name {
			return m.fields[i].Value
		}
	}
	return nil
}

// invoke calls the function or built-in of a call statement; nil is undefined.
func (m *machine) invoke(in *instr, lv []*ast.Term) (*ast.Term, error) {
	fn := in.x.fn
	switch in.op {
	case opCallBuiltin:
		return m.builtin(in, lv)
	case opCallDynamic:
		if fn = m.dynamic(in, lv); fn == nil {
			return nil, nil
		}
	}
	args, _ := m.gather(in.x.args, lv, true)
	v, err := m.call(fn, args)
	m.args = m.args[:len(m.args)-len(in.x.args)]
	return v, err
}

// gather pushes the values of ops on the argument stack; false when one is undefined (nothing pushed then), unless
// undefined may pass (a function's input and data arguments: input is undefined in a test without `with`).
func (m *machine) gather(ops []operand, lv []*ast.Term, undefined bool) ([]*ast.Term, bool) {
	start := len(m.args)
	for _, o := range ops {
		v := read(o, lv)
		if v == nil && !undefined {
			m.args = m.args[:start]
			return nil, false
		}
		m.args = append(m.args, v)
	}
	return m.args[start:len(m.args):len(m.args)], true
}

// builtin calls one of OPA's built-in functions as topdown does in its default mode: an error makes the call
// undefined, but a halt (a built-in's fatal error) ends the evaluation.
func (m *machine) builtin(in *instr, lv []*ast.Term) (*ast.Term, error) {
	args, ok := m.gather(in.x.args, lv, false)
	if !ok {
		return nil, nil
	}
	defer func() { m.args = m.args[:len(m.args)-len(in.x.args)] }()
	if m.iter == nil {
		m.iter = func(t *ast.Term) error {
			m.out = t
			return nil
		}
	}
	m.out = nil
	if err := in.x.builtin(m.bctx, args, m.iter); err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, halt.Err
		}
		return nil, nil
	}
	return m.out, nil
}

// dynamic finds the function a computed data path names.
func (m *machine) dynamic(in *instr, lv []*ast.Term) *function {
	parts := make([]string, 0, len(in.x.dynamic))
	for _, o := range in.x.dynamic {
		v := read(o, lv)
		if v == nil {
			return nil
		}
		s, ok := v.Value.(ast.String)
		if !ok {
			return nil
		}
		parts = append(parts, string(s))
	}
	return m.p.byPath[strings.Join(parts, "/")]
}

// scan runs the scan's block for each element of its source; an undefined statement moves on to the next.
func (m *machine) scan(in *instr, lv []*ast.Term) (int, error) {
	src := lv[in.source]
	if src == nil {
		return done, nil
	}
	body := in.blocks[0]
	var k int
	var err error
	each := func(key, value *ast.Term) bool {
		if err = m.tick(); err != nil {
			return true
		}
		lv[in.key], lv[in.value] = key, value
		k, err = m.block(body, lv)
		if err != nil {
			return true
		}
		return k != done && k != 0
	}
	switch v := src.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if each(intTerm(i), v.Elem(i)) {
				break
			}
		}
	case ast.Object:
		for _, key := range v.Keys() {
			if each(key, v.Get(key)) {
				break
			}
		}
	case ast.Set:
		for _, e := range v.Slice() {
			if each(e, e) {
				break
			}
		}
	default:
		return done, nil
	}
	switch {
	case err != nil:
		return 0, err
	case k == returned:
		return returned, nil
	case k >= 2:
		return k - 2, nil
	}
	return done, nil
}

// withBlock runs the block with a value replacing a local or a path within it, then restores the local.
func (m *machine) withBlock(in *instr, lv []*ast.Term) (int, error) {
	saved := lv[in.source]
	v := read(in.a, lv)
	if len(in.x.path) == 0 {
		lv[in.source] = v
	} else {
		path := make([]*ast.Term, len(in.x.path))
		for i, s := range in.x.path {
			path[i] = m.p.strings[s]
		}
		lv[in.source] = upsert(saved, path, v)
	}
	m.with++
	k, err := m.block(in.blocks[0], lv)
	m.with--
	lv[in.source] = saved
	switch {
	case err != nil:
		return 0, err
	case k == returned:
		return returned, nil
	case k == 0:
		return 0, nil
	case k > 0:
		return k - 1, nil
	}
	return done, nil
}

// upsert returns base with value at path, copying each object on the way; base is not changed.
func upsert(base *ast.Term, path []*ast.Term, value *ast.Term) *ast.Term {
	if len(path) == 0 {
		return value
	}
	out := ast.NewObject()
	var child *ast.Term
	if base != nil {
		if obj, ok := base.Value.(ast.Object); ok {
			obj.Foreach(func(k, v *ast.Term) { out.Insert(k, v) })
			child = obj.Get(path[0])
		}
	}
	out.Insert(path[0], upsert(child, path[1:], value))
	return ast.NewTerm(out)
}

// dot is src[key]: an object's value, an array's element, a set's member; nil when there is none.
func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch v := src.Value.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= v.Len() {
			return nil
		}
		return v.Elem(i)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case ast.String:
		return utf8.RuneCountInString(string(v)), true
	}
	return 0, false
}

func isKind(op opcode, v ast.Value) bool {
	switch op {
	case opIsArray:
		_, ok := v.(*ast.Array)
		return ok
	case opIsObject:
		_, ok := v.(ast.Object)
		return ok
	default:
		_, ok := v.(ast.Set)
		return ok
	}
}

func intTerm(i int) *ast.Term {
	if i >= 0 && i < len(small) {
		return small[i]
	}
	return ast.IntNumberTerm(i)
}

// conflict is topdown's error for two different values where one is allowed, at the statement's location.
func (m *machine) conflict(in *instr, msg string) error {
	var loc *ast.Location
	if in.x != nil && in.x.loc.Row > 0 {
		loc = &ast.Location{Row: in.x.loc.Row, Col: in.x.loc.Col, File: m.p.file(in.x.loc.File)}
	}
	return &topdown.Error{Code: topdown.ConflictErr, Message: msg, Location: loc}
}
