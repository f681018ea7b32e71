package config_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

func params(t *testing.T, v any) *apiextensionsv1.JSON {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &apiextensionsv1.JSON{Raw: b}
}

func policyConfig(t *testing.T, name, policy string, p map[string]any) v1alpha1.PolicyConfig {
	return v1alpha1.PolicyConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.PolicyConfigSpec{Policy: policy, Parameters: params(t, p)}}
}

func librarySources(t *testing.T) []policies.Source {
	t.Helper()
	all, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	var out []policies.Source
	for _, s := range all {
		if strings.HasSuffix(s.Name, "/no-privileged.rego") || strings.HasSuffix(s.Name, "/trusted-registries.rego") {
			out = append(out, s)
		}
	}
	return out
}

func TestOverlayPrecedenceAndMerging(t *testing.T) {
	e := newEngine(t)
	file, err := config.Parse([]byte("policies:\n  - name: trusted-registries\n    enforcement: warn\n    parameters: {trusted_registries: [gcr.io/company]}\n"), e)
	if err != nil {
		t.Fatal(err)
	}
	res := config.Resources{
		Policies: []v1alpha1.Policy{{ObjectMeta: metav1.ObjectMeta{Name: "trusted-registries"}, Spec: v1alpha1.PolicySpec{Mode: "enforce"}}},
		Configs: []v1alpha1.PolicyConfig{
			policyConfig(t, "team-a", "trusted-registries", map[string]any{"trusted_registries": []any{"registry.a.com/a", "gcr.io/company"}}),
			policyConfig(t, "team-b", "trusted-registries", map[string]any{"trusted_registries": []any{"registry.b.com/b"}}),
		},
	}
	eff := config.Overlay(context.Background(), librarySources(t), file, nil, res)
	s := eff.Policies["trusted-registries"]
	got, _ := json.Marshal(s.Params["trusted_registries"])
	if s.Mode != policies.ModeEnforce || string(got) != `["gcr.io/company","registry.a.com/a","registry.b.com/b"]` {
		t.Fatalf("mode %s, registries %s: want the Policy's mode and the file's list plus both teams' without duplicates", s.Mode, got)
	}
	if !eff.Resources["PolicyConfig/team-a"].Valid || !eff.Resources["Policy/trusted-registries"].Valid {
		t.Fatalf("statuses %+v", eff.Resources)
	}
	if _, ok := eff.TrustedRegistries.Match(mustRef(t, "registry.b.com/b/app:1")); !ok {
		t.Fatal("team-b's registry is not trusted by the facts")
	}
	// Deleting one PolicyConfig removes its entries.
	res.Configs = res.Configs[:1]
	eff = config.Overlay(context.Background(), librarySources(t), file, eff, res)
	if _, ok := eff.TrustedRegistries.Match(mustRef(t, "registry.b.com/b/app:1")); ok {
		t.Fatal("team-b's registry is still trusted after its PolicyConfig was deleted")
	}
}

func TestOverlayKeepsTheLastGoodSettings(t *testing.T) {
	e := newEngine(t)
	file := config.Default(e)
	good := config.Resources{Configs: []v1alpha1.PolicyConfig{policyConfig(t, "a", "trusted-registries", map[string]any{"trusted_registries": []any{"gcr.io/company"}})}}
	prev := config.Overlay(context.Background(), nil, file, nil, good)
	tests := []struct {
		name string
		res  config.Resources
		key  string
		want string
	}{
		{"wrong parameter type", config.Resources{Configs: []v1alpha1.PolicyConfig{policyConfig(t, "a", "trusted-registries", map[string]any{"trusted_registries": "gcr.io"})}},
			"PolicyConfig/a", "spec.parameters.trusted_registries: got string, want array"},
		{"a parameter the policy does not take", config.Resources{Configs: []v1alpha1.PolicyConfig{
			policyConfig(t, "a", "trusted-registries", map[string]any{"trusted_registries": []any{"gcr.io/company"}}),
			policyConfig(t, "b", "no-privileged", map[string]any{"x": 1}),
		}}, "PolicyConfig/b", "spec.parameters"},
		{"unknown policy", config.Resources{Configs: good.Configs, Policies: []v1alpha1.Policy{{ObjectMeta: metav1.ObjectMeta{Name: "nope"}}}}, "Policy/nope", `unknown policy "nope"`},
		{"bad mode", config.Resources{Configs: good.Configs, Policies: []v1alpha1.Policy{{ObjectMeta: metav1.ObjectMeta{Name: "trusted-registries"}, Spec: v1alpha1.PolicySpec{Mode: "sometimes"}}}},
			"Policy/trusted-registries", "spec.mode: unknown mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eff := config.Overlay(context.Background(), nil, file, prev, tt.res)
			st := eff.Resources[tt.key]
			if st.Valid || !strings.Contains(st.Message, tt.want) {
				t.Fatalf("status %+v, want invalid saying %q", st, tt.want)
			}
			got, _ := json.Marshal(eff.Policies["trusted-registries"].Params["trusted_registries"])
			if string(got) != `["gcr.io/company"]` {
				t.Fatalf("the last good trusted registries were lost: %s", got)
			}
		})
	}
}

func TestConflictingScalarsKeepTheLastGoodValue(t *testing.T) {
	e := newEngine(t)
	file := config.Default(e)
	one := config.Resources{Policies: []v1alpha1.Policy{{ObjectMeta: metav1.ObjectMeta{Name: "no-privileged"}, Spec: v1alpha1.PolicySpec{Mode: "audit"}}}}
	prev := config.Overlay(context.Background(), nil, file, nil, one)
	if prev.Policies["no-privileged"].Mode != policies.ModeAudit {
		t.Fatal("Policy mode not applied")
	}
	eff := config.Overlay(context.Background(), nil, file, prev, config.Resources{})
	if eff.Policies["no-privileged"].Mode != policies.ModeEnforce {
		t.Fatal("deleting the Policy did not restore the file's mode")
	}
}

func TestCustomRegoPolicy(t *testing.T) {
	lib := librarySources(t)
	e := newEngine(t)
	file := config.Default(e)
	rego := "package attest.security\n\nviolation[{\"violated\": true, \"message\": msg, \"severity\": \"high\"}] {\n  c := input.containers[_]\n  c.securityContext.runAsUser == 0\n  msg := \"runs as root\"\n}\n"
	pol := v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "security"}, Spec: v1alpha1.PolicySpec{Mode: "enforce", Rego: rego}}
	eff := config.Overlay(context.Background(), lib, file, nil, config.Resources{Policies: []v1alpha1.Policy{pol}})
	if st := eff.Resources["Policy/security"]; !st.Valid {
		t.Fatalf("custom policy in the documents' v0 layout rejected: %s", st.Message)
	}
	if _, ok := eff.Engine.Lookup("security"); !ok || eff.Policies["security"].Mode != policies.ModeEnforce {
		t.Fatal("the custom policy is not in the effective engine and config")
	}
	for _, tt := range []struct{ name, rego, want string }{
		{"does not compile", "package attest.broken\n\nviolation contains msg if {\n  msg := \n}\n", "spec.rego: "},
		{"impure", "package attest.impure\n\nimport rego.v1\n\nviolation contains msg if {\n  http.send({\"method\": \"get\", \"url\": \"http://x\"})\n  msg := \"x\"\n}\n", "http.send is not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: v1alpha1.PolicySpec{Rego: tt.rego}}
			err := config.ValidatePolicy(context.Background(), lib, file, e, &bad)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			eff := config.Overlay(context.Background(), lib, file, nil, config.Resources{Policies: []v1alpha1.Policy{pol, bad}})
			if st := eff.Resources["Policy/x"]; st.Valid {
				t.Fatal("a broken custom policy was accepted")
			}
			if _, ok := eff.Engine.Lookup("security"); !ok {
				t.Fatal("a broken custom policy took the good one down with it")
			}
		})
	}
}

func mustRef(t *testing.T, s string) attestation.Reference {
	t.Helper()
	r, err := attestation.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestScalarConflictBetweenPolicyConfigs(t *testing.T) {
	all, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.Compile(context.Background(), all)
	if err != nil {
		t.Fatal(err)
	}
	file := config.Default(e)
	good := config.Overlay(context.Background(), nil, file, nil, config.Resources{Configs: []v1alpha1.PolicyConfig{
		policyConfig(t, "team-a", "production-replicas", map[string]any{"min_replicas": 3}),
	}})
	if got := good.Policies["production-replicas"].Params["min_replicas"]; got != float64(3) {
		t.Fatalf("min_replicas = %v", got)
	}
	eff := config.Overlay(context.Background(), nil, file, good, config.Resources{Configs: []v1alpha1.PolicyConfig{
		policyConfig(t, "team-a", "production-replicas", map[string]any{"min_replicas": 3}),
		policyConfig(t, "team-b", "production-replicas", map[string]any{"min_replicas": 4}),
	}})
	st := eff.Resources["PolicyConfig/team-b"]
	if !strings.Contains(st.Message, "parameter min_replicas is set differently by PolicyConfigs team-a and team-b; the last good value is kept") {
		t.Fatalf("status %+v", st)
	}
	if got := eff.Policies["production-replicas"].Params["min_replicas"]; got != float64(3) {
		t.Fatalf("after a conflict min_replicas = %v, want the last good 3", got)
	}
}

func TestComplianceControls(t *testing.T) {
	e := newEngine(t)
	cfg, err := config.Parse([]byte(`
compliance:
  soc2:
    enabled: true
    controls:
      - {control: CC8.1, policy: trusted-registries, description: change management}
  gdpr:
    enabled: false
`), e)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(cfg.Controls(e, "SOC2"))
	p, _ := e.Lookup("no-privileged")
	if len(p.Compliance["soc2"]) == 0 || !strings.Contains(string(got), `{"framework":"soc2","control":"CC8.1","description":"change management","policies":["trusted-registries"]}`) ||
		!strings.Contains(string(got), `"control":"`+p.Compliance["soc2"][0]+`"`) {
		t.Fatalf("soc2 controls: %s (no-privileged METADATA: %v)", got, p.Compliance)
	}
	if c := cfg.Controls(e, "gdpr"); len(c) != 0 {
		t.Fatalf("a disabled framework lists controls: %+v", c)
	}
	for _, bad := range []string{
		"compliance: {soc2: {controls: [{control: CC1, policy: nope}]}}",
		"compliance: {soc2: {controls: [{policy: no-privileged}]}}",
		"compliance: {SOC2: {}}",
	} {
		if _, err := config.Parse([]byte(bad), e); err == nil || !strings.Contains(err.Error(), "compliance.") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
