package cedar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	cedargo "github.com/cedar-policy/cedar-go"

	"github.com/continuums/attest/policies"
)

// A Decision is Cedar's answer for one request, as ATTEST reads it.
type Decision struct {
	// Allowed is false when a forbid matched, or a default-deny scope matched and no permit did.
	Allowed bool
	// Reasons are the ids of the deciding policies: the matching forbids of a denial (or the default-deny
	// scopes no permit satisfied), the matching permits of an allow.
	Reasons []string
	// Errors are the policies that could not be evaluated, "<id>: <message>".
	Errors []string
	// Findings are the pipeline's findings of a denial, one per deciding policy.
	Findings []policies.Finding
	// failed is set when a policy that could deny could not be evaluated: ATTEST then fails closed.
	failed []string
}

// authorize decides r. Admission allows what no forbid matches (as Cedar for Kubernetes does, whose implicit
// permit-all this is), except inside a @default("deny") scope, where only what a permit allows is admitted.
func (s *Set) authorize(r *request) Decision {
	dec, diag := cedargo.Authorize(s.ps, r.entities, r.req)
	out := Decision{Allowed: true}
	for _, e := range diag.Errors {
		out.Errors = append(out.Errors, fmt.Sprintf("%s: %s", e.PolicyID, e.Message))
		if rl := s.rules[e.PolicyID]; rl != nil && rl.forbid {
			out.failed = append(out.failed, fmt.Sprintf("the Cedar policy %s (%s) could not be evaluated: %s", e.PolicyID, rl.where(), e.Message))
		}
	}
	var forbids []*rule
	for _, reason := range diag.Reasons {
		out.Reasons = append(out.Reasons, string(reason.PolicyID))
		if rl := s.rules[reason.PolicyID]; rl != nil && rl.forbid {
			forbids = append(forbids, rl)
		}
	}
	if dec == cedargo.Deny && len(forbids) > 0 {
		out.Allowed = false
		for _, rl := range forbids {
			out.Findings = append(out.Findings, rl.finding(false))
		}
		return out
	}
	if dec == cedargo.Deny && s.hasScopes() {
		// No permit matched: deny if the request falls in a default-deny scope.
		if scoped, sdiag := cedargo.Authorize(s.scopes, r.entities, r.req); scoped == cedargo.Allow {
			out.Allowed = false
			out.Reasons = nil
			for _, reason := range sdiag.Reasons {
				rl := s.rules[reason.PolicyID]
				out.Reasons = append(out.Reasons, string(reason.PolicyID))
				out.Findings = append(out.Findings, rl.finding(true))
			}
			// A permit of the scope that failed to evaluate might have allowed it: say so, and deny.
			for _, e := range diag.Errors {
				if rl := s.rules[e.PolicyID]; rl != nil && !rl.forbid {
					out.failed = append(out.failed, fmt.Sprintf("the Cedar policy %s (%s) could not be evaluated: %s", e.PolicyID, rl.where(), e.Message))
				}
			}
		}
	}
	return out
}

// finding is what the pipeline reports for a deciding policy: its @message (or, for lack of one, its @id or
// position), severity, @path or the field its conditions read, and @fix.
func (r *rule) finding(defaultDeny bool) policies.Finding {
	msg := r.message
	if msg == "" {
		if defaultDeny {
			msg = fmt.Sprintf("not permitted: no Cedar permit allows this request in the default-deny scope of %s", r.id)
		} else {
			msg = fmt.Sprintf("forbidden by the Cedar policy %s", r.id)
		}
	}
	return policies.Finding{Message: msg, Severity: r.severity, Path: r.path, Fix: r.fix}
}

// Decide evaluates the set on one pipeline input.
func (s *Set) Decide(o Options, in *policies.Input) (Decision, error) {
	r, err := o.newRequest(in, s.reads)
	if err != nil {
		return Decision{}, err
	}
	return s.authorize(r), nil
}

// Evaluator runs a Set as one pipeline policy.
type Evaluator struct {
	set  *Set
	opts Options
}

var _ policies.Evaluator = (*Evaluator)(nil)

// Engine is the engine label of Cedar policies' evaluation metrics.
func (e *Evaluator) Engine() string { return "cedar" }

// Evaluate returns a finding per matching forbid (or unsatisfied default-deny scope). A forbid that cannot be
// evaluated is an error, so the pipeline fails closed rather than admit what the forbid might have matched.
func (e *Evaluator) Evaluate(ctx context.Context, doc *policies.Document, _ policies.Settings) ([]policies.Finding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := e.set.Decide(e.opts, doc.Input())
	if err != nil {
		return nil, err
	}
	if len(d.failed) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(d.failed, "; "))
	}
	return d.Findings, nil
}

// Set is the policy set the evaluator runs.
func (e *Evaluator) Set() *Set { return e.set }

// NewPolicy makes a validated set one pipeline policy named name; file names its source ("cedar/<file>",
// "Policy/<name>"), and text is hashed into the policy's digest. Its severity is the highest of its forbids'.
func NewPolicy(name, file string, set *Set, text string, o Options) (*policies.Policy, error) {
	sum := sha256.Sum256([]byte(text))
	md := policies.Metadata{
		Name:        name,
		Title:       "Cedar policy set " + name,
		Description: fmt.Sprintf("Cedar policies %s", strings.Join(set.IDs(), ", ")),
		Severity:    set.severity(),
		DefaultMode: policies.ModeEnforce,
		File:        file,
		Digest:      "sha256:" + hex.EncodeToString(sum[:]),
		Operations:  set.Operations(),
		WriteKinds:  set.WriteKinds(),
	}
	for op, kinds := range set.OperationKinds() {
		if kinds != nil {
			if md.OperationKinds == nil {
				md.OperationKinds = map[string][]string{}
			}
			md.OperationKinds[op] = kinds
		}
	}
	return policies.NewPolicy(md, &Evaluator{set: set, opts: o})
}

// WithOptions is p with its entities built by o when p is a Cedar policy set, else p: a set checked before the
// configuration was known (a policy bundle's) takes the configuration's cedar.mfa. Name, file and digest stay.
func WithOptions(p *policies.Policy, o Options) (*policies.Policy, error) {
	e, ok := p.Evaluator().(*Evaluator)
	if !ok || e.opts == o {
		return p, nil
	}
	return policies.NewPolicy(p.Metadata, &Evaluator{set: e.set, opts: o})
}

var severityRank = map[policies.Severity]int{policies.SeverityLow: 1, policies.SeverityMedium: 2, policies.SeverityHigh: 3, policies.SeverityCritical: 4}

func (s *Set) severity() policies.Severity {
	best := policies.SeverityLow
	for _, r := range s.rules {
		if (r.forbid || r.defaultDeny) && severityRank[r.severity] > severityRank[best] {
			best = r.severity
		}
	}
	return best
}

func (s *Set) hasScopes() bool {
	for range s.scopes.All() {
		return true
	}
	return false
}
