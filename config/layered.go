package config

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/continuums/attest/policies"
)

// Layered is the effective configuration: the file's (reloaded by a Watcher) with the cluster's Policy and
// PolicyConfig resources on top. Current costs two atomic loads unless something changed.
type Layered struct {
	file  func() *Config
	lib   []policies.Source
	state atomic.Pointer[layeredState]
	mu    sync.Mutex // serialises recomputation and guards res and bundles
	res   Resources
	// bundles are set by the policy sources, apart from res, which the cluster's resources replace whole.
	bundles []LoadedBundle
	gen     atomic.Uint64
}

type layeredState struct {
	file      *Config
	gen       uint64
	effective *Config
}

// NewLayered layers resources over file(); lib is the embedded library, recompiled with custom Rego.
func NewLayered(file func() *Config, lib []policies.Source) *Layered {
	return &Layered{file: file, lib: lib}
}

// Current is the effective configuration for the next request.
func (l *Layered) Current() *Config {
	f := l.file()
	st := l.state.Load()
	if st != nil && st.file == f && st.gen == l.gen.Load() {
		return st.effective
	}
	return l.recompute(f)
}

func (l *Layered) recompute(f *Config) *Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f == nil {
		return nil
	}
	gen := l.gen.Load()
	if st := l.state.Load(); st != nil && st.file == f && st.gen == gen {
		return st.effective
	}
	var prev *Config
	if st := l.state.Load(); st != nil {
		prev = st.effective
	}
	eff := f
	if len(l.res.Policies) > 0 || len(l.res.Configs) > 0 || len(l.res.Sources) > 0 || len(l.bundles) > 0 {
		r := l.res
		r.Bundles = l.bundles
		eff = Overlay(context.Background(), l.lib, f, prev, r)
	}
	l.state.Store(&layeredState{file: f, gen: gen, effective: eff})
	return eff
}

// SetResources replaces the cluster's resources; the next Current sees them.
func (l *Layered) SetResources(r Resources) {
	l.mu.Lock()
	l.res = r
	l.gen.Add(1)
	l.mu.Unlock()
}

// SetBundles replaces the bundles the policy sources loaded; the next Current sees them.
func (l *Layered) SetBundles(b []LoadedBundle) {
	l.mu.Lock()
	l.bundles = b
	l.gen.Add(1)
	l.mu.Unlock()
}
