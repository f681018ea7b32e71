package config_test

import (
	"testing"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

func runtimePolicy(t *testing.T, name string, mode policies.Mode) *policies.Policy {
	t.Helper()
	p, err := policies.NewPolicy(policies.Metadata{Name: name, Title: name, DefaultMode: mode}, noFindings{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDynamic: a source's policies join the engine with their default settings, are replaced and removed as a
// whole, never take a name the base engine has, and an unchanged layer answers with the same configuration.
func TestDynamic(t *testing.T) {
	engine := newEngine(t)
	base := config.Default(engine)
	d := config.NewDynamic(func() *config.Config { return base })
	if got := d.Current(); got != base {
		t.Fatalf("with no source, Current should be the base configuration")
	}
	d.Set("gatekeeper", []*policies.Policy{
		runtimePolicy(t, "K8sRequiredLabels/owner", policies.ModeEnforce),
		runtimePolicy(t, "K8sRequiredLabels/app", policies.ModeAudit),
		runtimePolicy(t, "no-privileged", policies.ModeAudit), // taken by the library: left out
	})
	cfg := d.Current()
	for name, mode := range map[string]policies.Mode{"K8sRequiredLabels/owner": policies.ModeEnforce, "K8sRequiredLabels/app": policies.ModeAudit} {
		if _, ok := cfg.Engine.Lookup(name); !ok {
			t.Errorf("%s is not in the engine", name)
		}
		if got := cfg.Policies[name].Mode; got != mode {
			t.Errorf("%s: mode %q, want %q", name, got, mode)
		}
	}
	if p, _ := cfg.Engine.Lookup("no-privileged"); p.Evaluator() != nil {
		t.Errorf("a run-time policy took the library's no-privileged")
	}
	if _, ok := base.Engine.Lookup("K8sRequiredLabels/owner"); ok {
		t.Errorf("the base configuration was changed")
	}
	if d.Current() != cfg {
		t.Errorf("an unchanged layer should answer with the same configuration")
	}
	d.Set("gatekeeper", []*policies.Policy{runtimePolicy(t, "K8sRequiredLabels/app", policies.ModeEnforce)})
	cfg = d.Current()
	if _, ok := cfg.Engine.Lookup("K8sRequiredLabels/owner"); ok {
		t.Errorf("a replaced set kept a policy it no longer has")
	}
	if got := cfg.Policies["K8sRequiredLabels/app"].Mode; got != policies.ModeEnforce {
		t.Errorf("replaced policy: mode %q", got)
	}
	d.Set("gatekeeper", nil)
	if got := d.Current(); got.Engine != base.Engine {
		t.Errorf("after the source is removed the engine should be the base's")
	}
}
