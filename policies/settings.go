package policies

import (
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Settings is how one policy runs: its mode, effective parameters (validated and converted once), scope and
// rollout controls.
type Settings struct {
	Mode   Mode
	Params map[string]any
	// Match limits where the policy applies; nil applies everywhere.
	Match *Match
	// EnforceAfter keeps an enforcing policy in audit until this time (zero: enforce now); its warnings say from
	// when it will deny.
	EnforceAfter time.Time
	// ExistingWorkloads audit: on UPDATE, a violation already present in the old object warns instead of denying.
	ExistingWorkloads Mode
	// Mutate applies the policy's patch rule on the mutating path.
	Mutate bool
	term   *ast.Term
	// digest is the memo's digest of term (see memo.key).
	digest [32]byte
}

// NewSettings validates params against the policy's schema, fills in defaults and converts them for evaluation.
func (p *Policy) NewSettings(mode Mode, params map[string]any) (Settings, error) {
	if err := p.ValidateParams(params); err != nil {
		return Settings{}, err
	}
	eff := p.EffectiveParams(params)
	term, err := ParamsTerm(eff)
	if err != nil {
		return Settings{}, fmt.Errorf("convert parameters: %w", err)
	}
	return Settings{Mode: mode, Params: eff, term: term, digest: valueDigest(term.Value)}, nil
}

// DefaultSettings is the policy as its METADATA ships it.
func (p *Policy) DefaultSettings() Settings {
	s, err := p.NewSettings(p.DefaultMode, nil)
	if err != nil {
		// The defaults were validated when the policy compiled; reaching here is a bug in Compile.
		panic(fmt.Sprintf("policy %s: defaults no longer validate: %v", p.Name, err))
	}
	return s
}

// paramsDigest is the memo's digest of the parameters.
func (s Settings) paramsDigest() [32]byte {
	if s.term == nil {
		return emptyParamsDigest
	}
	return s.digest
}

// paramsTerm is input.params for this policy.
func (s Settings) paramsTerm() *ast.Term {
	if s.term == nil {
		return ast.ObjectTerm()
	}
	return s.term
}
