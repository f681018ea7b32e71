//go:build !lean

package bundles

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/policies"
)

// Source is one policy source to keep loaded: a bundle artifact in a registry, verified against a trust policy.
type Source struct {
	Name        string
	Ref         string
	TrustPolicy string
	Interval    time.Duration
	// Keychain holds the registry credentials (nil: anonymous).
	Keychain authn.Keychain
}

// Results of one sync, the result label of attest_policy_source_sync_total.
const (
	ResultLoaded      = "loaded"      // a new bundle verified, checked and swapped in
	ResultUnchanged   = "unchanged"   // the reference still names the loaded digest
	ResultUntrusted   = "untrusted"   // unsigned, signed by no authority of the trust policy, or covered by another
	ResultUnavailable = "unavailable" // the registry could not be asked, or the artifact not read
	ResultRefused     = "refused"     // verified, but not a valid bundle: it does not compile, or a test fails
)

// Status is what the syncer knows of one source, for PolicySource status and logs.
type Status struct {
	Source string
	Ref    string
	// Digest, Signer, Revision and Policies describe the loaded bundle (the last good one); empty before any.
	Digest, Signer, Revision string
	Policies                 []string
	// LastSync is when the source was last tried; LastSuccess when it last verified and checked.
	LastSync, LastSuccess time.Time
	// Ready is true when the last try succeeded; Result and Message say what happened then.
	Ready   bool
	Result  string
	Message string
}

// SyncerOptions configure NewSyncer.
type SyncerOptions struct {
	// Sources are the sources wanted now; read on every pass, so a configuration reload changes them.
	Sources func() []Source
	// Verifier is the image trust verifier of the current trust configuration.
	Verifier func() *attestation.Verifier
	// Library are the sources bundle policies compile with: a bundle policy never shadows a library policy.
	Library []policies.Source
	// OnChange receives every loaded bundle, whenever the set changes.
	OnChange func([]Loaded)
	// OnStatus, if set, receives a source's status after each sync of it.
	OnStatus func(Status)
	// Registerer takes the metrics (nil: none).
	Registerer prometheus.Registerer
	Clock      clock.WithTicker
	// Tick is how often due sources are looked for (default 1s).
	Tick time.Duration
	// Limits bound a bundle (DefaultLimits).
	Limits Limits
	// Remote are extra registry options (tests: a transport).
	Remote []remote.Option
}

// Syncer keeps each policy source's bundle loaded: it pulls, verifies, checks and swaps in a new bundle when the
// reference names a new digest, and on any failure keeps the last good bundle and says why.
type Syncer struct {
	o        SyncerOptions
	total    *prometheus.CounterVec
	lastGood *prometheus.GaugeVec

	mu    sync.Mutex
	state map[string]*sourceState
}

type sourceState struct {
	src    Source
	next   time.Time
	loaded *Loaded
	status Status
}

// NewSyncer validates the options and registers the metrics.
func NewSyncer(o SyncerOptions) (*Syncer, error) {
	if o.Sources == nil || o.Verifier == nil || o.OnChange == nil {
		return nil, errors.New("policy sources: Sources, Verifier and OnChange are required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	s := &Syncer{o: o, state: map[string]*sourceState{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attest_policy_source_sync_total",
			Help: "Syncs of each policy source, by result (loaded, unchanged, untrusted, unavailable, refused)."}, []string{"source", "result"}),
		lastGood: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "attest_policy_source_last_success_timestamp_seconds",
			Help: "When each policy source last verified and checked its bundle (Unix seconds)."}, []string{"source"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.total, s.lastGood} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("policy source metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Run syncs due sources every Tick until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	t := s.o.Clock.NewTicker(s.o.Tick)
	defer t.Stop()
	for {
		s.SyncDue(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// SyncDue syncs every source whose interval has passed (and every new or changed one), one after the other, and
// drops the bundles of sources no longer wanted.
func (s *Syncer) SyncDue(ctx context.Context) {
	wanted := s.o.Sources()
	now := s.o.Clock.Now()
	s.mu.Lock()
	changed := false
	keep := map[string]bool{}
	var due []*sourceState
	for _, src := range wanted {
		keep[src.Name] = true
		st, ok := s.state[src.Name]
		if !ok {
			st = &sourceState{status: Status{Source: src.Name}}
			s.state[src.Name] = st
		}
		if st.src.Ref != src.Ref || st.src.TrustPolicy != src.TrustPolicy || st.src.Interval != src.Interval {
			st.next = time.Time{} // changed: sync now; the last good bundle stays until another loads
		}
		st.src = src
		st.status.Ref = src.Ref
		if !now.Before(st.next) {
			due = append(due, st)
		}
	}
	for name, st := range s.state {
		if !keep[name] {
			changed = changed || st.loaded != nil
			delete(s.state, name)
		}
	}
	s.mu.Unlock()
	for _, st := range due {
		if s.sync(ctx, st) {
			changed = true
		}
	}
	if changed {
		s.o.OnChange(s.Loaded())
	}
}

// sync tries one source once; it reports whether the loaded bundle changed.
func (s *Syncer) sync(ctx context.Context, st *sourceState) bool {
	src := st.src
	now := s.o.Clock.Now()
	interval := src.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	status := st.status
	status.LastSync = now
	result, loaded, msg := s.fetch(ctx, st)
	status.Result, status.Message = result, msg
	status.Ready = result == ResultLoaded || result == ResultUnchanged
	if status.Ready {
		status.LastSuccess = now
		s.lastGood.WithLabelValues(src.Name).Set(float64(now.Unix()))
	}
	if loaded != nil {
		status.Digest, status.Signer = loaded.Digest, loaded.Signer
		status.Revision, status.Policies = loaded.revision, nil
		for _, p := range loaded.Policies {
			status.Policies = append(status.Policies, p.Name)
		}
	}
	s.total.WithLabelValues(src.Name, result).Inc()
	s.mu.Lock()
	st.next = now.Add(interval)
	st.status = status
	if loaded != nil {
		st.loaded = &loaded.Loaded
	}
	s.mu.Unlock()
	if s.o.OnStatus != nil {
		s.o.OnStatus(status)
	}
	return loaded != nil
}

type loadedBundle struct {
	Loaded
	revision string
}

// fetch verifies and pulls the source's bundle and checks it unless it is the one loaded.
func (s *Syncer) fetch(ctx context.Context, st *sourceState) (string, *loadedBundle, string) {
	src := st.src
	v, err := Fetch(ctx, s.o.Verifier(), src.Ref, src.TrustPolicy, src.Keychain, s.o.Limits, s.o.Remote...)
	switch {
	case errors.Is(err, ErrUntrusted):
		return ResultUntrusted, nil, err.Error()
	case err != nil:
		return ResultUnavailable, nil, err.Error()
	}
	if st.loaded != nil && st.loaded.Digest == v.Digest {
		return ResultUnchanged, nil, fmt.Sprintf("bundle %s signed by %s loaded", v.Digest, v.Signer)
	}
	c, err := v.Bundle.Check(ctx, s.o.Library, "PolicySource/"+src.Name+"@"+v.Digest)
	if err != nil {
		return ResultRefused, nil, fmt.Sprintf("bundle %s refused: %v", v.Digest, err)
	}
	for _, p := range c.Policies {
		// The decision log's per-policy digest names the bundle too: "<bundle digest>/<source digest>".
		p.Digest = v.Digest + "/" + p.Digest
	}
	return ResultLoaded, &loadedBundle{Loaded: Loaded{Source: src.Name, Digest: v.Digest, Signer: v.Signer, Policies: c.Policies},
		revision: v.Bundle.Manifest.Revision}, fmt.Sprintf("bundle %s signed by %s loaded", v.Digest, v.Signer)
}

// Loaded is every source's loaded bundle, by source name.
func (s *Syncer) Loaded() []Loaded {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Loaded
	for _, st := range s.state {
		if st.loaded != nil {
			out = append(out, *st.loaded)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// Statuses is every source's status, by source name.
func (s *Syncer) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.state))
	for _, st := range s.state {
		out = append(out, st.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
