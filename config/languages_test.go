package config_test

import (
	"context"
	"testing"
	"time"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

type noFindings struct{}

func (noFindings) Evaluate(context.Context, *policies.Document, policies.Settings) ([]policies.Finding, error) {
	return nil, nil
}

// TestOtherLanguagesKeptWithCustomRego: a policy of another language (a Gatekeeper constraint, named
// <Kind>/<name>) stays in the configuration's engine when custom_policies recompile the Rego, keeps the mode it
// ships with, and a policies: entry can name it.
func TestOtherLanguagesKeptWithCustomRego(t *testing.T) {
	lib, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.NewPolicy(policies.Metadata{Name: "K8sRequiredLabels/must-have-owner", DefaultMode: policies.ModeAudit}, noFindings{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := lib.With(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, yaml string
		mode       policies.Mode
	}{
		{"custom_policies", globalSettingsYAML, policies.ModeAudit},
		{"policies entry", "policies:\n  - name: K8sRequiredLabels/must-have-owner\n    mode: enforce\n", policies.ModeEnforce},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.ParseWith([]byte(tt.yaml), e, config.Options{Now: func() time.Time { return loadedAt }})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := cfg.Engine.Lookup("K8sRequiredLabels/must-have-owner"); !ok {
				t.Fatal("the constraint's policy left the engine")
			}
			if got := cfg.Policies["K8sRequiredLabels/must-have-owner"].Mode; got != tt.mode {
				t.Errorf("mode = %q, want %q", got, tt.mode)
			}
		})
	}
}
