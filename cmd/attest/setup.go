package main

import (
	"context"
	"fmt"
	"time"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// engineAndConfig compiles the library and loads the config file (when path is empty, the files found as
// loadConfig finds them), as every command that decides does; a bad config is a usage error (exit 2).
func engineAndConfig(ctx context.Context, path string) (*policies.Engine, *config.Config, error) {
	engine, err := compileLibrary(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(ctx, path, engine)
	if err != nil {
		return nil, nil, usageError(err)
	}
	if cfg.Engine != nil {
		engine = cfg.Engine // the library with the configuration's custom_policies
	}
	return engine, cfg, nil
}

// parseNow reads --now (RFC 3339), the request time that makes expiries and windows reproducible; empty is now.
func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError(fmt.Errorf("--now: %w", err))
	}
	return t, nil
}
