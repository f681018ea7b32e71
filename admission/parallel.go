package admission

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuums/attest/policies"
)

// policyRun is one policy to evaluate for a request, and what evaluating it gave.
type policyRun struct {
	p           *policies.Policy
	s           policies.Settings
	mode        policies.Mode
	enforceFrom time.Time

	done     bool // false when the request's context ended before the policy ran
	findings []policies.Finding
	err      error
	existing map[string]bool // the findings the old object had too, under existingWorkloads: audit
	sampled  bool
	duration time.Duration
}

// inFlight counts the policy evaluations running in this process, so that a request fans its policies out over
// idle cores only: one client's admission finishes sooner, while a busy webhook (or `policy check`, which already
// evaluates one object per core) evaluates each request's policies in sequence, with no goroutines to schedule.
var inFlight atomic.Int64

// evaluatePolicies runs every policy of runs over doc, in parallel on the cores that are idle, and fills in each
// run's results. Policies are independent: each reads only doc, its settings and its own memo.
func (e *Evaluator) evaluatePolicies(ctx context.Context, runs []policyRun, doc *policies.Document, old *oldObject) {
	workers := 1
	if len(runs) > 1 {
		busy := inFlight.Add(1)
		defer inFlight.Add(-1)
		if idle := int64(runtime.GOMAXPROCS(0)) - busy + 1; idle > 1 {
			workers = int(min(idle, int64(len(runs))))
		}
	}
	if workers == 1 {
		for i := range runs {
			e.evaluatePolicy(ctx, &runs[i], doc, old)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(runs) {
					return
				}
				e.evaluatePolicy(ctx, &runs[i], doc, old)
			}
		})
	}
	wg.Wait()
}

// evaluatePolicy runs one policy, unless the request's context has ended.
func (e *Evaluator) evaluatePolicy(ctx context.Context, r *policyRun, doc *policies.Document, old *oldObject) {
	if ctx.Err() != nil {
		return
	}
	t0 := e.clock.Now()
	r.findings, r.err = r.p.Eval(ctx, doc, r.s)
	if r.err == nil && len(r.findings) > 0 && r.mode == policies.ModeEnforce && r.s.ExistingWorkloads == policies.ModeAudit {
		r.existing = old.findings(ctx, r.p, r.s)
	}
	r.duration = e.clock.Since(t0)
	if r.p.HasSample() {
		if sampled, err := r.p.Sampled(ctx, doc, r.s); err == nil && sampled {
			r.sampled = true
		}
	}
	r.done = true
}
