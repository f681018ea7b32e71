package admission

import (
	"context"
	"sync"
	"time"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

// effectiveMode is the mode a policy runs in for this request: an enforcing policy audits until its
// enforceAfter (returned, so warnings can say from when it denies), and the global --mode audit downgrades it.
func (e *Evaluator) effectiveMode(s policies.Settings, in Input) (policies.Mode, time.Time) {
	mode := s.Mode
	var from time.Time
	if mode == policies.ModeEnforce && !s.EnforceAfter.IsZero() && timeOf(in).Before(s.EnforceAfter) {
		mode, from = policies.ModeAudit, s.EnforceAfter
	}
	if mode == policies.ModeEnforce && e.mode == policies.ModeAudit {
		mode = policies.ModeAudit
	}
	return mode, from
}

// oldObject evaluates policies on the old object of an UPDATE, once, and only when a policy with
// existingWorkloads: audit has findings on the new one.
type oldObject struct {
	e    *Evaluator
	in   Input
	cfg  *config.Config
	gk   workload.GroupKind
	doc  *policies.Document
	once sync.Once // the old object's document is built on first use, for every policy that needs it
}

// findings are the keys of the policy's findings on the old object (none for CREATE or an unreadable object,
// so nothing is waved through by mistake).
func (o *oldObject) findings(ctx context.Context, p *policies.Policy, s policies.Settings) map[string]bool {
	if o.in.Request.Operation != "UPDATE" || o.in.OldObject == nil {
		return nil
	}
	o.once.Do(func() {
		containers, err := workload.Extract(o.gk, o.in.Request.SubResource, o.in.OldObject)
		if err != nil {
			return
		}
		oldIn := o.in
		oldIn.Object, oldIn.OldObject = o.in.OldObject, nil
		input := o.e.policyInput(oldIn, o.cfg, containers, o.e.verifyImages(ctx, oldIn, o.cfg, containers)) // cache hits in practice
		if o.doc, err = policies.NewDocument(input); err != nil {
			o.doc = nil
		}
	})
	if o.doc == nil {
		return nil
	}
	fs, err := p.Eval(ctx, o.doc, s)
	if err != nil {
		return nil
	}
	keys := make(map[string]bool, len(fs))
	for _, f := range fs {
		keys[findingKey(f)] = true
	}
	return keys
}

// findingKey identifies a finding across the old and new object: the same problem at the same path.
func findingKey(f policies.Finding) string { return f.Path + "\x00" + f.Message }

// engineFor is the engine of this configuration: the built-in one, or one recompiled with custom Policy Rego.
func (e *Evaluator) engineFor(cfg *config.Config) *policies.Engine {
	if cfg != nil && cfg.Engine != nil {
		return cfg.Engine
	}
	return e.engine
}
