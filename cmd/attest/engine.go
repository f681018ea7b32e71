package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// compileLibrary loads the embedded policy library: its catalogue now, each policy compiled when first used
// (admission.New compiles the policies its configuration runs), so a check of two policies compiles two and
// `attest policy list` compiles none. The library's tests compile all of it with policies.Compile.
func compileLibrary(ctx context.Context) (*policies.Engine, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, fmt.Errorf("read the embedded policy library: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return policies.Load(srcs)
}

// parseGlobalMode reads --mode: empty keeps per-policy modes, audit downgrades every enforced policy.
func parseGlobalMode(s string) (policies.Mode, error) {
	if s == "" {
		return "", nil
	}
	m, err := policies.ParseMode(s)
	if err != nil || m == policies.ModeOff {
		return "", fmt.Errorf("--mode must be enforce or audit, got %q", s)
	}
	return m, nil
}

// cfgFunc serves a fixed configuration.
func cfgFunc(cfg *config.Config) func() *config.Config { return func() *config.Config { return cfg } }

// GC settings. A check streams: its live heap is the compiled policies and the documents in flight (4-7 MiB
// measured at 10,000 and 100,000 objects), so collecting at three times the live heap costs little CPU; there
// is no soft limit, which would make the collector run continuously the moment a report that keeps its results
// (SARIF, JUnit, --framework) grew past it. The webhook's settings are webhook.GCPercent and webhook.MemoryLimit (used
// by serve.go only: the lean build that checks does not link the webhook).
const (
	batchGCPercent = 200
	noMemoryLimit  = math.MaxInt64
)

// tuneGC applies a GC percentage and a soft memory limit, unless the user set
// GOGC or GOMEMLIMIT.
func tuneGC(percent int, limit int64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(limit)
	debug.SetGCPercent(percent)
}
