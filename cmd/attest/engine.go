package main

import (
	"context"
	"fmt"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// compileLibrary compiles the embedded policy library.
func compileLibrary(ctx context.Context) (*policies.Engine, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, fmt.Errorf("read the embedded policy library: %w", err)
	}
	return policies.Compile(ctx, srcs)
}

// loadConfig reads the config file, or uses every policy's defaults when path is empty.
func loadConfig(path string, engine *policies.Engine) (*config.Config, error) {
	if path == "" {
		return config.Default(engine), nil
	}
	return config.Load(path, engine)
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
