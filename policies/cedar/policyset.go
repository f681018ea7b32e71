// Package cedar runs Cedar policies (github.com/cedar-policy/cedar-go) in ATTEST's admission pipeline. A policy
// set (one or more .cedar texts) is one ATTEST policy: a matching forbid is a finding, which the pipeline denies
// in enforce mode and warns about in audit mode, with every other rollout feature. The entity model is Cedar for
// Kubernetes' admission model, so its admission policies run unmodified; see the README's Cedar section.
package cedar

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	cedargo "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/continuums/attest/policies"
)

// ErrInvalid marks a policy set that does not parse or does not validate against the schema.
var ErrInvalid = errors.New("invalid Cedar policy")

// A Source is one Cedar text and where it came from (a file name, or "Policy/<name>" for a resource).
type Source struct {
	Name string
	Text string
}

// A Set is a parsed Cedar policy set.
type Set struct {
	ps    *cedargo.PolicySet
	rules map[types.PolicyID]*rule
	ids   []types.PolicyID // in source order
	// scopes holds the permits annotated @default("deny"): they permit nothing themselves but mark a scope (their
	// principal, action and resource constraints and conditions) in which what no other permit allows is denied.
	scopes *cedargo.PolicySet
	ops    map[string]bool
	// opKinds are, by operation, the resource entity types its forbids and default-deny scopes name ("*": any).
	opKinds map[string]map[types.EntityType]bool
	// reads are the object attributes the policies read (resource.X, resource.oldObject.X): only they are
	// converted; "oldObject" among them asks for the old object.
	reads map[string]bool
}

// A rule is what ATTEST reads from one Cedar policy's annotations.
type rule struct {
	p           *cedargo.Policy
	id          types.PolicyID
	forbid      bool
	defaultDeny bool
	message     string
	severity    policies.Severity
	path        string
	fix         string
	pos         types.Position
}

// where is file:line:column of the rule.
func (r *rule) where() string { return position(r.pos) }

func position(p types.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

var parserPos = regexp.MustCompile(`<input>:(\d+):(\d+)`)

// Parse reads Cedar policy texts into one set. Each policy is named by its @id annotation, or "<file>:<line>"
// when it has none; @message, @severity (critical, high, medium, low), @path and @fix shape the findings of a
// forbid; a permit annotated @default("deny") permits nothing but marks a scope (constraints and conditions) in
// which a request no other permit of the set allows is denied. Errors name file:line:column.
func Parse(srcs ...Source) (*Set, error) {
	s := &Set{ps: cedargo.NewPolicySet(), rules: map[types.PolicyID]*rule{}, scopes: cedargo.NewPolicySet(), ops: map[string]bool{},
		opKinds: map[string]map[types.EntityType]bool{}, reads: map[string]bool{}}
	for _, src := range srcs {
		list, err := cedargo.NewPolicyListFromBytes(src.Name, []byte(src.Text))
		if err != nil {
			msg := parserPos.ReplaceAllString(err.Error(), src.Name+":$1:$2")
			return nil, fmt.Errorf("%w: %s", ErrInvalid, msg)
		}
		for _, p := range list {
			r, err := readRule(p)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, position(p.Position()), err)
			}
			if prev, dup := s.rules[r.id]; dup {
				return nil, fmt.Errorf("%w: %s: policy id %q is already the id of the policy at %s", ErrInvalid, r.where(), r.id, prev.where())
			}
			s.rules[r.id] = r
			s.ids = append(s.ids, r.id)
			if r.defaultDeny {
				s.scopes.Add(r.id, p) // marks a scope; permits nothing itself
			} else {
				s.ps.Add(r.id, p)
			}
			addReads((*xast.Policy)(p.AST()), s.reads)
			if r.forbid || r.defaultDeny {
				ast := (*xast.Policy)(p.AST())
				for op := range operations(ast.Action) {
					s.ops[op] = true
					if s.opKinds[op] == nil {
						s.opKinds[op] = map[types.EntityType]bool{}
					}
					s.opKinds[op][resourceType(ast.Resource)] = true
				}
			}
		}
	}
	if len(s.ids) == 0 {
		return nil, fmt.Errorf("%w: no policies in %s", ErrInvalid, names(srcs))
	}
	return s, nil
}

func names(srcs []Source) string {
	n := make([]string, len(srcs))
	for i, s := range srcs {
		n[i] = s.Name
	}
	return strings.Join(n, ", ")
}

// readRule reads a policy's annotations.
func readRule(p *cedargo.Policy) (*rule, error) {
	a := p.Annotations()
	pos := p.Position()
	r := &rule{p: p, forbid: p.Effect() == cedargo.Forbid, pos: pos, severity: policies.SeverityMedium}
	r.id = types.PolicyID(fmt.Sprintf("%s:%d", pos.Filename, pos.Line))
	if id, ok := a["id"]; ok {
		if strings.TrimSpace(string(id)) == "" {
			return nil, errors.New("@id is empty")
		}
		r.id = types.PolicyID(id)
	}
	r.message = string(a["message"])
	r.fix = string(a["fix"])
	if sev, ok := a["severity"]; ok {
		s, err := policies.ParseSeverity(string(sev))
		if err != nil {
			return nil, fmt.Errorf("@severity: %w", err)
		}
		r.severity = s
	}
	if d, ok := a["default"]; ok {
		if string(d) != "deny" {
			return nil, fmt.Errorf("@default(%q): the only default a policy can set is \"deny\"", string(d))
		}
		if r.forbid {
			return nil, errors.New(`@default("deny") belongs on a permit: it makes the permit's scope deny what no permit allows`)
		}
		r.defaultDeny = true
	}
	if path, ok := a["path"]; ok {
		r.path = string(path)
	} else {
		r.path = fieldPath((*xast.Policy)(p.AST()))
	}
	return r, nil
}

// operations are the admission operations (CREATE, UPDATE, DELETE, CONNECT) an action scope covers.
func operations(scope xast.IsActionScopeNode) map[string]bool {
	out := map[string]bool{}
	add := func(uid types.EntityUID) {
		if uid.Type != ActionType {
			return
		}
		for op, a := range Actions {
			if string(uid.ID) == a || string(uid.ID) == "all" {
				out[op] = true
			}
		}
	}
	switch s := scope.(type) {
	case xast.ScopeTypeAll:
		for op := range Actions {
			out[op] = true
		}
	case xast.ScopeTypeEq:
		add(s.Entity)
	case xast.ScopeTypeIn:
		add(s.Entity)
	case xast.ScopeTypeInSet:
		for _, e := range s.Entities {
			add(e)
		}
	}
	return out
}

// Operations are the admission operations that the set's forbids and default-deny scopes apply to, sorted: the
// operations ATTEST's webhook must receive for this set.
func (s *Set) Operations() []string {
	out := make([]string, 0, len(s.ops))
	for op := range s.ops {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// OperationKinds are, for each operation beyond CREATE and UPDATE that the set judges, the kinds ("group/Kind",
// core kinds "/Pod") its forbids and default-deny scopes name in their resource scope; nil when one of them
// names none (`resource`, `resource in …`): that operation is judged for every kind.
func (s *Set) OperationKinds() map[string][]string {
	out := map[string][]string{}
	for op, ets := range s.opKinds {
		if op == "CREATE" || op == "UPDATE" {
			continue
		}
		if ets[anyType] {
			out[op] = nil
			continue
		}
		kinds := make([]string, 0, len(ets))
		for t := range ets {
			group, kind := KindOf(t)
			kinds = append(kinds, group+"/"+kind)
		}
		sort.Strings(kinds)
		out[op] = slices.Compact(kinds)
	}
	return out
}

// WriteKinds are the kinds ("group/Kind", core kinds "/ConfigMap") whose CREATE or UPDATE the set's forbids and
// default-deny scopes name in their resource scope (`resource is core::v1::ConfigMap`): what the webhook must be
// sent beyond its workload kinds. A scope that names no type adds none (it judges the kinds the webhook is sent).
func (s *Set) WriteKinds() []string {
	var kinds []string
	for _, op := range []string{"CREATE", "UPDATE"} {
		for t := range s.opKinds[op] {
			if t == anyType {
				continue
			}
			group, kind := KindOf(t)
			kinds = append(kinds, group+"/"+kind)
		}
	}
	sort.Strings(kinds)
	return slices.Compact(kinds)
}

// anyType stands for a resource scope that names no entity type.
const anyType = types.EntityType("*")

// resourceType is the entity type a resource scope names (`resource is T`, `resource is T in …`, `resource ==
// T::"x"`), anyType when it names none.
func resourceType(scope xast.IsResourceScopeNode) types.EntityType {
	switch r := scope.(type) {
	case xast.ScopeTypeIs:
		return r.Type
	case xast.ScopeTypeIsIn:
		return r.Type
	case xast.ScopeTypeEq:
		return r.Entity.Type
	}
	return anyType
}

// IDs are the set's policy ids in source order.
func (s *Set) IDs() []string {
	out := make([]string, len(s.ids))
	for i, id := range s.ids {
		out[i] = string(id)
	}
	return out
}

// fieldPath is the object field a policy's conditions name: the longest attribute path read from `resource`
// (resource.spec.template.spec.hostNetwork → spec.template.spec.hostNetwork), "" when they read none.
func fieldPath(p *xast.Policy) string {
	best := []string(nil)
	resourcePaths(p, func(path []string) {
		if len(path) > len(best) {
			best = path
		}
	})
	if len(best) > 0 && best[0] == "oldObject" {
		return ""
	}
	return strings.Join(best, ".")
}

// addReads adds the object attributes a policy reads: the first name of every attribute path from resource, and
// the first name after resource.oldObject.
func addReads(p *xast.Policy, reads map[string]bool) {
	resourcePaths(p, func(path []string) {
		if len(path) > 0 {
			reads[path[0]] = true
		}
		if len(path) > 1 && path[0] == "oldObject" {
			reads[path[1]] = true
		}
	})
}

// resourcePaths calls fn with the attribute path of every access and `has` in p's conditions (nil for those
// not rooted at the resource variable).
func resourcePaths(p *xast.Policy, fn func(path []string)) {
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			var path []string
			switch x := n.(type) {
			case xast.NodeTypeAccess:
				path = accessPath(x.StrOpNode)
			case xast.NodeTypeHas:
				path = accessPath(x.StrOpNode)
			}
			fn(path)
			return true
		})
	}
}

// accessPath is the attribute path of an access rooted at the resource variable, nil otherwise.
func accessPath(n xast.StrOpNode) []string {
	path := []string{string(n.Value)}
	arg := n.Arg
	for {
		switch x := arg.(type) {
		case xast.NodeTypeAccess:
			path = append([]string{string(x.Value)}, path...)
			arg = x.Arg
		case xast.NodeTypeVariable:
			if x.Name == "resource" {
				return path
			}
			return nil
		default:
			return nil
		}
	}
}

// Validate type-checks every policy of the set against ATTEST's schema (strict mode, as `cedar validate`):
// errors name the policy's file:line:column and id.
func (s *Set) Validate() error {
	sch, err := theSchema()
	if err != nil {
		return err
	}
	v := validate.New(sch.resolved)
	var errs []string
	for _, id := range s.ids {
		r := s.rules[id]
		if err := v.Policy(string(id), (*xast.Policy)(r.p.AST())); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				line = strings.TrimPrefix(line, fmt.Sprintf("for policy `%s`, ", id))
				errs = append(errs, fmt.Sprintf("%s: policy %s: %s", r.where(), id, line))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "\n"))
	}
	return nil
}
