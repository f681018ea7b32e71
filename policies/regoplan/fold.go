package regoplan

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The planner builds every collection at run time, literals too: `c.type in {"container", "init"}` makes the set
// and adds its two members for each container of each evaluation. fold builds such a collection once, when the
// plan loads, and the statements that built it become one assignment of the value, shared by every evaluation.
// Nothing may change a shared value, so fold only folds a collection when the statements it folds are the only
// ones in the function that add to its local, and the local (or a local it is copied to) is only ever read where a
// value cannot be kept and added to later: by built-ins (which never change their arguments; topdown shares its constant terms with them
// the same way), lookups, comparisons and scans. Its members are constants (strings, booleans), so nothing
// reached through it can be added to either.

// fold folds the constant collections of each function.
func fold(fns []*function) {
	for _, fn := range fns {
		adds := map[int32]int{}
		kept := map[int32]bool{}
		var copies []*instr
		walk(fn.blocks, func(in *instr) {
			if isAdd(in.op) {
				adds[in.target]++
			}
			if (in.op == opAssign || in.op == opAssignOnce) && in.a.term == nil {
				copies = append(copies, in)
				return
			}
			for _, l := range passed(in) {
				kept[l] = true
			}
		})
		// A copy into another local is read where that local is: the value is kept if the copy is kept or added to.
		for changed := true; changed; {
			changed = false
			for _, in := range copies {
				if !kept[in.a.local] && (kept[in.target] || adds[in.target] > 0) {
					kept[in.a.local], changed = true, true
				}
			}
		}
		for _, b := range fn.blocks {
			foldBlocks(b, func(l int32, n int) bool { return !kept[l] && adds[l] == n })
		}
	}
}

// passed lists the locals whose value a statement hands on to where it may be kept: a function's arguments or
// result, a collection, the result set, a with (and another local, which fold follows).
func passed(in *instr) []int32 {
	var out []int32
	local := func(o operand) {
		if o.term == nil {
			out = append(out, o.local)
		}
	}
	switch in.op {
	case opAssign, opAssignOnce, opWith:
		local(in.a)
	case opCall, opCallDynamic:
		for _, a := range in.x.args {
			local(a)
		}
	case opReturn, opResultAdd:
		out = append(out, in.source)
	case opArrayAppend, opSetAdd:
		local(in.a)
	case opArrayOf, opObjectOf:
		for _, a := range in.x.args {
			local(a)
		}
	case opObjectInsert, opObjectInsertOnce:
		local(in.a)
		local(in.b)
	case opObjectMerge:
		out = append(out, in.key, in.value)
	}
	return out
}

func isMake(op opcode) bool { return op == opMakeArray || op == opMakeObject || op == opMakeSet }

func isAdd(op opcode) bool {
	return op == opArrayAppend || op == opObjectInsert || op == opObjectInsertOnce || op == opSetAdd
}

// walk calls f on every statement of blocks and of the blocks nested in them.
func walk(blocks []*block, f func(*instr)) {
	for _, b := range blocks {
		for i := range b.instrs {
			f(&b.instrs[i])
			walk(b.instrs[i].blocks, f)
		}
	}
}

// foldBlocks folds the constant collections of b and of the blocks nested in it whose local and number of
// statements may folds.
func foldBlocks(b *block, may func(local int32, adds int) bool) {
	out := b.instrs[:0]
	for i := 0; i < len(b.instrs); i++ {
		in := b.instrs[i]
		for _, nb := range in.blocks {
			foldBlocks(nb, may)
		}
		if isMake(in.op) {
			if v, n := constant(b.instrs[i:]); v != nil && may(in.target, n) {
				out = append(out, instr{op: opAssign, target: in.target, a: operand{term: v}})
				i += n
				continue
			}
		}
		out = append(out, in)
	}
	b.instrs = out
}

// constant builds the collection that run's first statement makes and the statements right after it add to, when
// every one of them adds a constant, and returns it with their number; nil when there is none (or two constant
// keys of an object conflict, an error left to run time).
func constant(run []instr) (*ast.Term, int) {
	mk := &run[0]
	n := 0
	for _, in := range run[1:] {
		if !isAdd(in.op) || in.target != mk.target || in.a.term == nil ||
			(in.op == opObjectInsert || in.op == opObjectInsertOnce) && in.b.term == nil {
			break
		}
		n++
	}
	if n == 0 {
		return nil, 0
	}
	adds := run[1 : 1+n]
	switch mk.op {
	case opMakeArray:
		elems := make([]*ast.Term, 0, n)
		for _, in := range adds {
			if in.op != opArrayAppend {
				return nil, 0
			}
			elems = append(elems, in.a.term)
		}
		return ast.ArrayTerm(elems...), n
	case opMakeSet:
		set := ast.NewSet()
		for _, in := range adds {
			if in.op != opSetAdd {
				return nil, 0
			}
			set.Add(in.a.term)
		}
		return ast.NewTerm(set), n
	default:
		obj := ast.NewObject()
		for _, in := range adds {
			if in.op != opObjectInsert && in.op != opObjectInsertOnce {
				return nil, 0
			}
			if prev := obj.Get(in.a.term); prev != nil && in.op == opObjectInsertOnce && prev.Value.Compare(in.b.term.Value) != 0 {
				return nil, 0
			}
			obj.Insert(in.a.term, in.b.term)
		}
		return ast.NewTerm(obj), n
	}
}

// literals makes each array or object a literal builds ([path, name] for sprintf, {"message": msg, "path": p})
// with one statement once its members are known, rather than with OPA's Array.Append, which copies the array for
// each element added, or by inserting into an empty object that grows. An array's make must be followed in its
// block by exactly as many appends as its capacity; an object's inserts are those that follow its make up to the
// first statement that uses the object otherwise. Between them there may only be straight-line statements that
// neither read nor set the collection's local nor change a member already taken. Nothing can then tell the two
// apart: the collection is read only after the statement that now makes it whole, with the values its members had
// when added. (Should a statement between be undefined, the block ends with the local unset rather than holding
// part of a collection, which nothing reads: the planner reuses a local in other blocks only after setting it.)
func literals(fn *function) {
	var rewrite func(blocks []*block)
	rewrite = func(blocks []*block) {
		for _, b := range blocks {
			drop := map[int]bool{}
			for i := range b.instrs {
				rewrite(b.instrs[i].blocks)
				if op := b.instrs[i].op; op == opMakeArray || op == opMakeObject {
					literal(b, i, drop)
				}
			}
			out := b.instrs[:0]
			for i, in := range b.instrs {
				if !drop[i] {
					out = append(out, in)
				}
			}
			b.instrs = out
		}
	}
	rewrite(fn.blocks)
}

// literal turns the last add to the collection b's statement i makes into one statement making it with every
// member (opArrayOf, or opObjectOf with keys and values in pairs), and marks the make and the other adds in drop,
// when literals may (see there).
func literal(b *block, i int, drop map[int]bool) {
	mk := b.instrs[i]
	t, add, made, limit := mk.target, opObjectInsert, opObjectOf, len(b.instrs)
	if mk.op == opMakeArray {
		add, made, limit = opArrayAppend, opArrayOf, int(mk.n)
	}
	notT := func(o operand) bool { return o.term != nil || o.local != t }
	var args []operand // the members' operands: elements, or keys and values
	var adds []int
	taken := func(l int32) bool {
		return slices.ContainsFunc(args, func(a operand) bool { return a.term == nil && a.local == l })
	}
scan:
	for j := i + 1; j < len(b.instrs) && len(adds) < limit; j++ {
		in := &b.instrs[j]
		switch {
		case in.op == add && in.target == t && add == opArrayAppend && notT(in.a):
			args, adds = append(args, in.a), append(adds, j)
			continue
		case in.op == add && in.target == t && add == opObjectInsert && notT(in.a) && notT(in.b):
			args, adds = append(args, in.a, in.b), append(adds, j)
			continue
		case len(in.blocks) > 0 || in.op == opReturn || in.op == opBreak || slices.Contains(locals(in), t):
			break scan
		}
		for _, w := range writes(in) {
			if taken(w) {
				break scan // a member's local changes before the collection would be made
			}
		}
	}
	if len(adds) == 0 || mk.op == opMakeArray && len(adds) != limit {
		return
	}
	drop[i] = true
	for _, j := range adds[:len(adds)-1] {
		drop[j] = true
	}
	b.instrs[adds[len(adds)-1]] = instr{op: made, target: t, x: &cold{args: args}}
}

// directResults rewrites a plan's last statements, which make the object {"result": value} and add it to the
// result set, into one that adds the value: Eval returns the value, and the object was made for each
// evaluation only to be taken apart.
func directResults(fn *function) {
	refs := map[int32]int{}
	walk(fn.blocks, func(in *instr) {
		for _, l := range locals(in) {
			refs[l]++
		}
	})
	var rewrite func(blocks []*block)
	rewrite = func(blocks []*block) {
		for _, b := range blocks {
			out := b.instrs[:0]
			for i := 0; i < len(b.instrs); i++ {
				in := b.instrs[i]
				rewrite(in.blocks)
				if in.op == opMakeObject && i+2 < len(b.instrs) && refs[in.target] == 3 {
					ins, add := &b.instrs[i+1], &b.instrs[i+2]
					if s, ok := ins.a.term.Value.(ast.String); ins.op == opObjectInsert && ins.target == in.target &&
						ins.a.term != nil && ok && s == "result" && add.op == opResultAdd && add.source == in.target {
						out = append(out, instr{op: opResultValue, a: ins.b})
						i += 2
						continue
					}
				}
				out = append(out, in)
			}
			b.instrs = out
		}
	}
	rewrite(fn.blocks)
}

// locals lists every local a statement reads or writes.
func locals(in *instr) []int32 {
	out := writes(in)
	operands := func(os ...operand) {
		for _, o := range os {
			if o.term == nil {
				out = append(out, o.local)
			}
		}
	}
	switch in.op {
	case opCall, opCallBuiltin, opCallDynamic, opArrayOf, opObjectOf:
		operands(in.x.args...)
		operands(in.x.dynamic...)
	case opDot, opEqual, opNotEqual:
		operands(in.a, in.b)
	case opLen, opAssign, opAssignOnce, opIsArray, opIsObject, opIsSet, opResultValue:
		operands(in.a)
	case opArrayAppend, opSetAdd: // the collection they add to is in writes
		operands(in.a)
	case opObjectInsert, opObjectInsertOnce:
		operands(in.a, in.b)
	case opObjectMerge:
		out = append(out, in.key, in.value)
	case opWith:
		operands(in.a)
		out = append(out, in.source)
	case opScan, opReturn, opResultAdd, opIsDefined, opIsUndefined:
		out = append(out, in.source)
	}
	return out
}

// writes lists the locals a statement sets.
func writes(in *instr) []int32 {
	switch in.op {
	case opCall, opCallBuiltin, opCallDynamic, opDot, opLen, opAssignInt, opAssign, opAssignOnce, opReset,
		opMakeNull, opMakeNumber, opMakeArray, opArrayOf, opMakeObject, opObjectOf, opMakeSet, opObjectMerge,
		opArrayAppend, opObjectInsert, opObjectInsertOnce, opSetAdd:
		return []int32{in.target}
	case opScan:
		return []int32{in.key, in.value}
	}
	return nil
}

// fieldsOnly reports whether every function reads its input local (its first parameter) only as input.<name>,
// and passes it on only as a callee's input (and passes nothing else as one), never changing it (no with on input).
func fieldsOnly(fns []*function) bool {
	ok := true
	for _, fn := range fns {
		if len(fn.params) == 0 {
			return false
		}
		input := fn.params[0]
		walk(fn.blocks, func(in *instr) {
			if !ok {
				return
			}
			for _, l := range writes(in) {
				if l == input {
					ok = false
				}
			}
			switch in.op {
			case opDot:
				if in.a.term == nil && in.a.local == input {
					_, isStr := constantString(in.b)
					ok = ok && isStr
				}
				if in.b.term == nil && in.b.local == input {
					ok = false
				}
				return
			case opCall, opCallDynamic:
				// A callee reads its first argument's fields as this input's: it must be this input.
				for i, a := range in.x.args {
					if (i == 0) != (a.term == nil && a.local == input) {
						ok = false
					}
				}
				return
			case opWith:
				if in.source == input {
					ok = false
				}
			}
			for _, l := range locals(in) {
				if l == input {
					ok = false
				}
			}
		})
	}
	return ok
}

// readFields turns each input.<name> of fn into a read of that field.
func readFields(fn *function) {
	input := fn.params[0]
	walk(fn.blocks, func(in *instr) {
		if in.op == opDot && in.a.term == nil && in.a.local == input {
			name, _ := constantString(in.b)
			in.op, in.x = opField, &cold{name: name}
		}
	})
}

func constantString(o operand) (string, bool) {
	if o.term == nil {
		return "", false
	}
	s, ok := o.term.Value.(ast.String)
	return string(s), ok
}
