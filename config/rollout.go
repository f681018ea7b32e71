package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/continuums/attest/policies"
)

// Rollout is the per-policy scope and rollout block, the same in policies.yaml and in a Policy resource.
type Rollout struct {
	Match *policies.MatchSpec `json:"match,omitempty"`
	// EnforceAfter (RFC 3339): an enforcing policy audits until then.
	EnforceAfter string `json:"enforceAfter,omitempty"`
	// ExistingWorkloads audit|enforce: on UPDATE, violations already in the old object only warn (audit).
	ExistingWorkloads string `json:"existingWorkloads,omitempty"`
	// Mutate applies the policy's patch rule on the mutating path.
	Mutate bool `json:"mutate,omitempty"`
}

// applyRollout validates r and sets it on s; errors start with field.
func applyRollout(p *policies.Policy, s *policies.Settings, r Rollout, field string) error {
	if r.Match != nil {
		m, err := policies.NewMatch(*r.Match, field+".match")
		if err != nil {
			return err
		}
		s.Match = m
	}
	if r.EnforceAfter != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(r.EnforceAfter))
		if err != nil {
			return fmt.Errorf("%s.enforceAfter: %q is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)", field, r.EnforceAfter)
		}
		s.EnforceAfter = t
	}
	switch r.ExistingWorkloads {
	case "", "enforce":
	case "audit":
		s.ExistingWorkloads = policies.ModeAudit
	default:
		return fmt.Errorf("%s.existingWorkloads: %q is not audit or enforce", field, r.ExistingWorkloads)
	}
	if r.Mutate && !p.HasPatch() {
		return fmt.Errorf("%s.mutate: policy %s has no patch rule, so it cannot mutate", field, p.Name)
	}
	s.Mutate = r.Mutate
	return nil
}
