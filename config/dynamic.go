package config

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/continuums/attest/policies"
)

// Dynamic layers policies that come and go while ATTEST runs (Gatekeeper constraints watched in the cluster;
// any other engine that loads at run time) over a configuration source. Each source's policies are replaced
// as a whole by Set, and the next Current sees the new set or the old one, never a mix. Current costs two
// atomic loads unless something changed.
type Dynamic struct {
	base  func() *Config
	mu    sync.Mutex // serialises Set and recomputation
	sets  map[string][]*policies.Policy
	gen   atomic.Uint64
	state atomic.Pointer[dynamicState]
}

type dynamicState struct {
	base      *Config
	gen       uint64
	effective *Config
}

// NewDynamic layers run-time policies over base().
func NewDynamic(base func() *Config) *Dynamic {
	return &Dynamic{base: base, sets: map[string][]*policies.Policy{}}
}

// Set replaces the policies of one source (nil removes them).
func (d *Dynamic) Set(source string, ps []*policies.Policy) {
	d.mu.Lock()
	if ps == nil {
		delete(d.sets, source)
	} else {
		d.sets[source] = ps
	}
	d.gen.Add(1)
	d.mu.Unlock()
}

// Current is the base configuration with every source's policies added to its engine, each with its default
// settings (the file's policy.enabled and fail_on_violation switches apply to them too). A policy whose name is
// already taken (by the base engine or an earlier source, in source-name order) is left out.
func (d *Dynamic) Current() *Config {
	b := d.base()
	st := d.state.Load()
	if b != nil && st != nil && st.base == b && st.gen == d.gen.Load() {
		return st.effective
	}
	return d.recompute(b)
}

func (d *Dynamic) recompute(b *Config) *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	if b == nil {
		return nil
	}
	gen := d.gen.Load()
	if st := d.state.Load(); st != nil && st.base == b && st.gen == gen {
		return st.effective
	}
	eff := b
	if len(d.sets) > 0 && b.Engine != nil {
		out := *b
		out.Policies = maps.Clone(b.Policies)
		var add []*policies.Policy
		taken := map[string]bool{}
		for _, src := range slices.Sorted(maps.Keys(d.sets)) {
			for _, p := range d.sets[src] {
				if _, ok := b.Engine.Lookup(p.Name); ok || taken[p.Name] {
					continue
				}
				taken[p.Name] = true
				add = append(add, p)
				if _, ok := out.Policies[p.Name]; !ok {
					out.Policies[p.Name] = p.DefaultSettings()
				}
			}
		}
		if e, err := b.Engine.With(add...); err == nil { // names were checked above: cannot fail
			out.Engine = e
			out.applySwitches(out.Engine)
			eff = &out
		}
	}
	d.state.Store(&dynamicState{base: b, gen: gen, effective: eff})
	return eff
}
