package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/continuums/attest/config"
)

// LoopOptions configure Loop.
type LoopOptions struct {
	// Interval between audits; a change of the policy configuration starts one at once.
	Interval time.Duration
	// ConfigPoll is how often the configuration is compared with the last audited one (default 2 s).
	ConfigPoll time.Duration
	Metrics    *Metrics
	// Done, when set, is called after every run (tests, drafts).
	Done func(Stats, error)
}

// Loop audits now, then every Interval and whenever the policies' settings change, until ctx ends. Run it only
// on the replica that holds the audit Lease (see Elect).
func (a *Auditor) Loop(ctx context.Context, o LoopOptions) {
	if o.ConfigPoll <= 0 {
		o.ConfigPoll = 2 * time.Second
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := time.NewTicker(o.ConfigPoll)
	defer poll.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-poll.C:
			if Fingerprint(a.o.Config()) == last {
				continue
			}
			a.o.Log.Info("policy configuration changed: auditing now")
		}
		last = Fingerprint(a.o.Config())
		st, err := a.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		end := a.o.Clock.Now()
		if err != nil {
			a.o.Log.Error("audit finished with errors", "error", err.Error(), "namespaces", st.Namespaces, "objects", st.Objects)
		} else {
			o.Metrics.observe(st, float64(end.UnixNano())/1e9)
			a.o.Log.Info("audit done", "namespaces", st.Namespaces, "objects", st.Objects, "folded", st.Folded, "reports", st.Reports,
				"pass", st.Summary.Pass, "fail", st.Summary.Fail, "warn", st.Summary.Warn, "skip", st.Summary.Skip, "error", st.Summary.Error,
				"duration", st.Duration.String(), "evaluating", st.Evaluating.String(), "writing", st.Writing.String())
		}
		if o.Done != nil {
			o.Done(st, err)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(o.Interval)
	}
}

// Fingerprint identifies what the audit's results depend on in a configuration: each policy's mode,
// parameters, scope and rollout. A reload that changes none of these (a status write, a comment) is not a change.
func Fingerprint(cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	type entry struct {
		Name, Mode, ExistingWorkloads string
		EnforceAfter                  time.Time
		Params, Match                 any
	}
	names := make([]string, 0, len(cfg.Policies))
	for n := range cfg.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	entries := make([]entry, 0, len(names))
	for _, n := range names {
		s := cfg.Policies[n]
		entries = append(entries, entry{n, string(s.Mode), string(s.ExistingWorkloads), s.EnforceAfter, s.Params, s.Match})
	}
	b, err := json.Marshal(struct {
		Policies []entry
		Digest   string
	}{entries, cfg.Digest})
	if err != nil {
		return cfg.Digest // parameters are JSON values; cannot fail in practice
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
