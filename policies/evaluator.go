package policies

import (
	"context"
	"fmt"
)

// Evaluator is what a policy language other than Rego (Gatekeeper constraints, Cedar) provides for each of its
// policies: the findings for one document under one policy's settings. It must be safe for concurrent use; the
// pipeline applies mode, match, rollout and exemptions to its findings exactly as to a Rego policy's.
type Evaluator interface {
	Evaluate(ctx context.Context, doc *Document, s Settings) ([]Finding, error)
}

// EngineNamer is an Evaluator that names its engine for metrics ("gatekeeper", "cedar"); one that does not is
// "custom".
type EngineNamer interface {
	Engine() string
}

// Engine names what evaluates p, the engine label of attest_policy_evaluation_duration_seconds: "opa" for Rego.
func (p *Policy) Engine() string {
	if p.ev == nil {
		return "opa"
	}
	if n, ok := p.ev.(EngineNamer); ok {
		return n.Engine()
	}
	return "custom"
}

// NewPolicy makes a pipeline policy of md evaluated by ev; md.Parameters, when set, is the JSON schema its
// parameters are validated against, as for a Rego policy's METADATA. Such a policy has no patch or sample rule.
func NewPolicy(md Metadata, ev Evaluator) (*Policy, error) {
	if ev == nil {
		return nil, fmt.Errorf("policy %s: no evaluator", md.Name)
	}
	if md.Severity == "" {
		md.Severity = SeverityMedium
	}
	if md.DefaultMode == "" {
		md.DefaultMode = ModeEnforce
	}
	params, err := compileParamSchema(md)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", md.Name, err)
	}
	p := &Policy{Metadata: md, params: params, ev: ev, c: &compiled{}}
	p.once.Do(func() {}) // nothing to compile: the evaluator holds what it needs
	return p, nil
}

// Evaluator returns the policy's evaluator, nil for a Rego policy: engines recognise their own policies by it.
func (p *Policy) Evaluator() Evaluator { return p.ev }

// With returns an engine holding e's policies and ps, sorted by name; a name taken twice is an error, so a
// language cannot shadow another's policy. e itself is unchanged.
func (e *Engine) With(ps ...*Policy) (*Engine, error) {
	out := &Engine{policies: make([]*Policy, 0, len(e.policies)+len(ps)), byName: make(map[string]*Policy, len(e.policies)+len(ps))}
	for _, p := range e.policies {
		out.add(p)
	}
	for _, p := range ps {
		if prev, taken := out.byName[p.Name]; taken {
			return nil, fmt.Errorf("policy %s of %s: the name is taken by the policy of %s", p.Name, p.File, prev.File)
		}
		out.add(p)
	}
	out.sort()
	return out, nil
}

// Input returns the input the document was made from, for evaluators that read Go values rather than Rego
// terms. Callers must not modify it.
func (d *Document) Input() *Input { return &d.in }
