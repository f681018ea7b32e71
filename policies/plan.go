package policies

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/continuums/attest/policies/regoplan"
)

// planAfter is the evaluation of a policy that starts planning it, in the background: a run that evaluates a
// policy a few times (a one-object check, validating a Policy resource) never pays the planner's ~10 ms, and
// one that evaluates it often (an admission webhook, a stream of manifests) soon runs the plan.
const planAfter = 8

// planSlots lets one policy be planned at a time, so background planning takes at most one core from the
// evaluations it will speed up.
var planSlots = make(chan struct{}, 1)

// planState is a compiled policy's plan: what planning needs until it runs, then the program or the planner's
// error. Until a plan is stored, topdown evaluates the policy.
type planState struct {
	source *planSource
	once   sync.Once
	evals  atomic.Int32
	done   atomic.Pointer[planned]
}

// planSource is the parsed modules of a policy's group (the ones the compiler has not rewritten) and its own.
type planSource struct {
	group map[string]*ast.Module
	mod   *ast.Module
}

type planned struct {
	prog  *regoplan.Program
	entry map[string]string // rule → entrypoint
	err   error
}

// planNow plans the rules of c with OPA's planner, once; a policy the planner cannot plan keeps topdown, and
// nothing is lost but speed.
func (c *compiled) planNow() *planned {
	c.plan.once.Do(func() {
		src := c.plan.source
		c.plan.source = nil
		out := &planned{}
		defer c.plan.done.Store(out)
		if src == nil {
			out.err = fmt.Errorf("nothing to plan")
			return
		}
		names := slices.Clone(c.rules)
		if c.patch != nil {
			names = append(names, patchRule)
		}
		if c.sample != nil {
			names = append(names, sampleRule)
		}
		out.entry = map[string]string{}
		entrypoints := make([]string, 0, len(names))
		for _, name := range names {
			ref := src.mod.Package.Path.Append(ast.StringTerm(name))
			parts := make([]string, 0, len(ref)-1)
			for _, t := range ref[1:] {
				s, ok := t.Value.(ast.String)
				if !ok {
					out.err = fmt.Errorf("package path %s is not all strings", src.mod.Package.Path)
					return
				}
				parts = append(parts, string(s))
			}
			out.entry[name] = strings.Join(parts, "/")
			entrypoints = append(entrypoints, out.entry[name])
		}
		// Planning is done once for the process, never for one request: no request's context applies.
		out.prog, out.err = regoplan.Plan(context.Background(), src.group, pureCapabilities(), entrypoints)
	})
	return c.plan.done.Load()
}

// planned returns the plan when there is one; the evaluation that reaches planAfter starts planning.
func (c *compiled) planned() *planned {
	if pl := c.plan.done.Load(); pl != nil {
		return pl
	}
	if c.plan.evals.Add(1) == planAfter {
		go func() {
			planSlots <- struct{}{}
			defer func() { <-planSlots }()
			c.planNow()
		}()
	}
	return nil
}

// ruleValues are the values of the named rules of one evaluation: Rego values from the plan, in the order of the
// names, or JSON-like Go values from topdown. nil: a rule was undefined (topdown's query then binds none).
type ruleValues struct {
	terms    []*ast.Term
	bindings map[string]any
}

// json is rule i's value (name) as JSON-like Go values.
func (r *ruleValues) json(i int, name string) (any, error) {
	if r.terms == nil {
		return r.bindings[name], nil
	}
	v, err := ast.JSON(r.terms[i].Value)
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", name, err)
	}
	return v, nil
}

// ruleInput is a policy's input: the fields of a document it reads and its parameters, or a whole value.
type ruleInput struct {
	doc    *Document
	reads  inputReads
	params *ast.Term
	value  ast.Value // instead of doc (tests)
}

// object is the input as one value.
func (r ruleInput) object() ast.Value {
	if r.doc == nil {
		return r.value
	}
	return r.doc.input(r.reads, r.params)
}

// evalRules evaluates each named rule over input with the plan, or with topdown's query q until there is one
// (or when off is set).
func (c *compiled) evalRules(ctx context.Context, q *rego.PreparedEvalQuery, names []string, input ruleInput, off bool) (*ruleValues, error) {
	var pl *planned
	if !off {
		pl = c.planned()
	}
	if pl == nil || pl.prog == nil {
		rs, err := evalQuery(ctx, q, input.object())
		if err != nil || len(rs) == 0 {
			return nil, err
		}
		return &ruleValues{bindings: rs[0].Bindings}, nil
	}
	out := &ruleValues{terms: make([]*ast.Term, len(names))}
	var fields []regoplan.Field
	var in *ast.Term
	if pl.prog.ReadsFields() && input.doc != nil {
		// The plan reads only input's fields: they are passed without the object around them.
		var buf [numParts + 1]regoplan.Field
		fields = input.doc.fields(buf[:0], input.reads, input.params)
	} else {
		in = ast.NewTerm(input.object())
	}
	for i, name := range names {
		var v *ast.Term
		var ok bool
		var err error
		if in == nil {
			v, ok, err = pl.prog.EvalFields(ctx, pl.entry[name], fields)
		} else {
			v, ok, err = pl.prog.Eval(ctx, pl.entry[name], in)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			// topdown's query binds every rule or none; a rule of the query that is undefined leaves it empty.
			return nil, nil
		}
		out.terms[i] = v
	}
	return out, nil
}

// Plan plans the named Rego policies now (every one when names is empty), one at a time, instead of after their
// first evaluations; policies the planner cannot plan keep topdown (Planned says why).
func (e *Engine) Plan(names ...string) {
	for _, p := range e.policies {
		if len(names) > 0 && !slices.Contains(names, p.Name) || p.ev != nil {
			continue
		}
		if c, err := p.compiled(); err == nil {
			c.planNow()
		}
	}
}

// SetPlanned chooses how Rego policies are evaluated: through their plan once there is one (on, the default),
// or always with topdown (off), to compare the two.
func (e *Engine) SetPlanned(on bool) {
	for _, p := range e.policies {
		p.noPlan.Store(!on)
	}
}

// Planned says whether the policy's rules run through a plan, and if not, why: not planned yet, the planner's
// error for a Rego policy it could not plan, or that the policy is not Rego or does not compile.
func (p *Policy) Planned() (bool, error) {
	if p.ev != nil {
		return false, fmt.Errorf("policy %s is not Rego", p.Name)
	}
	c, err := p.compiled()
	if err != nil {
		return false, err
	}
	pl := c.plan.done.Load()
	if pl == nil {
		return false, fmt.Errorf("policy %s is not planned yet", p.Name)
	}
	return pl.prog != nil, pl.err
}
