package config_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

// The policy documents' files, as they write them.
const (
	globalSettingsYAML = `# ~/.config/attest/policies.yaml
policy:
  enabled: true
  opa_enabled: true
  gatekeeper_enabled: false
  fail_on_violation: true
  policy_bundle_url: "https://policies.company.com/attest/bundle.tar.gz"
  policy_bundle_path: "~/.config/attest/bundles"
  custom_policies:
    - name: "require-team-label"
      description: "All workloads must carry a team label"
      level: "organization"
      severity: "high"
      rego_code: |
        package attest.custom.team_label

        violation[{"msg": msg}] {
          not input.resource.metadata.labels.team
          msg := "workloads must carry a team label"
        }
`
	governanceYAML = `# .attest/governance.yaml
governance:
  exemption_approval:
    required_approvers: 2
    required_teams: ["security-team", "platform-team"]
    max_duration: "30d"
  emergency_override:
    enabled: true
    required_approvers: 1
    audit_trail: true
  policy_approval:
    required_reviewers: 2
    required_teams: ["security-team"]
`
	exemptionsYAML = `# Temporary Exemptions
exemptions:
  - policy_name: "no-privileged"
    resource_kind: "Deployment"
    resource_name: "node-exporter"
    resource_namespace: "monitoring"
    reason: "Node metrics need host access until the v3 exporter ships"
    expires_at: "2026-07-15T00:00:00Z"
    approved_by: "security-team-lead"
`
	complianceYAML = `compliance:
  soc2:
    enabled: true
    controls: ["CC6.1", "CC7.2", "CC9.9"]
  gdpr:
    enabled: true
    data_protection:
      require_annotations: true
    required_annotations:
      - "gdpr.attest.continuu.ms/lawful-basis"
      - "gdpr.company.com/data-classification"
  hipaa:
    enabled: true
    encryption:
      at_rest: true
      in_transit: true
    access_controls:
      rbac_required: true
    audit_logging:
      enabled: true
      retention_days: 2190
    data_classification:
      required: true
`
)

// loadedAt is the time the tests load listed exemptions at: exemptionsYAML's expiry is 30 days later.
var loadedAt = time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)

// libraryEngine is the whole embedded library, each policy compiled when first used.
var libraryEngine = sync.OnceValues(func() (*policies.Engine, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, err
	}
	return policies.Load(srcs)
})

func parseAt(t *testing.T, yaml string) *config.Config {
	t.Helper()
	e, err := libraryEngine()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseWith([]byte(yaml), e, config.Options{Now: func() time.Time { return loadedAt }})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// TestEngineSwitches: opa_enabled false turns the Rego policies off and leaves a Cedar set on; enabled false turns
// both off. (gatekeeper_enabled false turning constraints off is TestCheckGatekeeperDisabled in cmd/attest, with
// real constraints.)
func TestEngineSwitches(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.cedar"), []byte(`@id("no-alice") @message("not alice")
forbid (principal == k8s::User::"alice", action, resource);
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cedarYAML := "cedar:\n  directories: [" + dir + "]\n"
	for _, tc := range []struct {
		name, yaml      string
		rego, cedarMode policies.Mode
	}{
		{"opa_enabled false", "policy:\n  opa_enabled: false\n" + cedarYAML, policies.ModeOff, policies.ModeEnforce},
		{"enabled false", "policy:\n  enabled: false\n" + cedarYAML, policies.ModeOff, policies.ModeOff},
		{"both on", "policy:\n  opa_enabled: true\n  gatekeeper_enabled: false\n" + cedarYAML, policies.ModeEnforce, policies.ModeEnforce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseAt(t, tc.yaml)
			if got := cfg.Policies[noPrivileged].Mode; got != tc.rego {
				t.Errorf("no-privileged (Rego): mode %q, want %q", got, tc.rego)
			}
			if got := cfg.Policies["people"].Mode; got != tc.cedarMode {
				t.Errorf("people (Cedar): mode %q, want %q", got, tc.cedarMode)
			}
		})
	}
}

func TestGlobalSettingsBlock(t *testing.T) {
	bundleWarnings := []string{
		"policy.policy_bundle_url: policy bundles are not supported yet: https://policies.company.com/attest/bundle.tar.gz is not fetched (the embedded library and custom_policies apply)",
		"policy.policy_bundle_path: policy bundles are not supported yet: ~/.config/attest/bundles is not read (the embedded library and custom_policies apply)",
	}
	tests := []struct {
		name         string
		yaml         string
		wantModes    map[string]policies.Mode
		wantWarnings []string
	}{
		{
			name:         "the documents' file: custom policy enforced, bundles warned about",
			yaml:         globalSettingsYAML,
			wantModes:    map[string]policies.Mode{"require-team-label": policies.ModeEnforce, noPrivileged: policies.ModeEnforce, "disallow-latest-tag": policies.ModeAudit, "change-window": policies.ModeOff},
			wantWarnings: bundleWarnings,
		},
		{
			name:         "fail_on_violation false is the global audit mode",
			yaml:         strings.Replace(globalSettingsYAML, "fail_on_violation: true", "fail_on_violation: false", 1),
			wantModes:    map[string]policies.Mode{"require-team-label": policies.ModeAudit, noPrivileged: policies.ModeAudit, "disallow-latest-tag": policies.ModeAudit, "change-window": policies.ModeOff},
			wantWarnings: bundleWarnings,
		},
		{
			name:         "enabled false turns every policy off",
			yaml:         strings.Replace(globalSettingsYAML, "  enabled: true", "  enabled: false", 1),
			wantModes:    map[string]policies.Mode{"require-team-label": policies.ModeOff, noPrivileged: policies.ModeOff, "disallow-latest-tag": policies.ModeOff},
			wantWarnings: bundleWarnings,
		},
		{
			name:         "opa_enabled false turns every policy off: every policy is Rego",
			yaml:         strings.Replace(globalSettingsYAML, "opa_enabled: true", "opa_enabled: false", 1),
			wantModes:    map[string]policies.Mode{"require-team-label": policies.ModeOff, noPrivileged: policies.ModeOff},
			wantWarnings: bundleWarnings,
		},
		{
			name:      "gatekeeper_enabled true leaves every policy as it is",
			yaml:      "policy:\n  gatekeeper_enabled: true\n",
			wantModes: map[string]policies.Mode{noPrivileged: policies.ModeEnforce},
		},
		{
			name:      "gatekeeper_enabled false leaves ATTEST's Rego on",
			yaml:      "policy:\n  gatekeeper_enabled: false\n",
			wantModes: map[string]policies.Mode{noPrivileged: policies.ModeEnforce},
		},
		{
			name:         "a policies entry sets a custom policy's mode",
			yaml:         globalSettingsYAML + "policies:\n  - name: require-team-label\n    enforcement: warn\n",
			wantModes:    map[string]policies.Mode{"require-team-label": policies.ModeAudit, noPrivileged: policies.ModeEnforce},
			wantWarnings: bundleWarnings,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseAt(t, tt.yaml)
			for name, want := range tt.wantModes {
				if got := cfg.Policies[name].Mode; got != want {
					t.Errorf("%s: mode %q, want %q", name, got, want)
				}
			}
			if !reflect.DeepEqual(cfg.Warnings, tt.wantWarnings) {
				t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, tt.wantWarnings)
			}
		})
	}
}

func TestCustomPolicyFromTheDocuments(t *testing.T) {
	cfg := parseAt(t, globalSettingsYAML)
	p, ok := cfg.Engine.Lookup("require-team-label")
	if !ok {
		t.Fatal("the custom policy is not in the configuration's engine")
	}
	if p.Severity != policies.SeverityHigh || p.Title != "All workloads must carry a team label" || p.File != "custom_policies/require-team-label" {
		t.Errorf("metadata = severity %q, title %q, file %q", p.Severity, p.Title, p.File)
	}
	if _, ok := cfg.Engine.Lookup(noPrivileged); !ok {
		t.Error("the library is not in the configuration's engine")
	}
	doc := func(labels map[string]any) *policies.Document {
		d, err := policies.NewDocument(policies.Input{Resource: map[string]any{"kind": "Deployment", "metadata": map[string]any{"name": "web", "labels": labels}}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	findings, err := p.Eval(context.Background(), doc(map[string]any{"app": "web"}), cfg.Policies[p.Name])
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Message != "workloads must carry a team label" {
		t.Errorf("findings without a team label = %+v, want the policy's message", findings)
	}
	findings, err = p.Eval(context.Background(), doc(map[string]any{"team": "shop"}), cfg.Policies[p.Name])
	if err != nil || len(findings) != 0 {
		t.Errorf("findings with a team label = %+v, %v; want none", findings, err)
	}
}

func TestGovernanceBlock(t *testing.T) {
	cfg := parseAt(t, governanceYAML)
	g := cfg.Governance
	if g.RequiredApprovers != 2 || g.EmergencyApprovers != 1 || g.MaxDuration != 30*24*time.Hour || g.EmergencyOff {
		t.Errorf("governance = approvers %d, emergency approvers %d, max %s, emergency off %v", g.RequiredApprovers, g.EmergencyApprovers, g.MaxDuration, g.EmergencyOff)
	}
	for _, team := range []string{"security-team", "platform-team"} {
		if !g.MayApprove("alice", []string{team}) {
			t.Errorf("a member of %s may not approve", team)
		}
	}
	if g.MayApprove("bob", []string{"developers"}) {
		t.Error("a member of another group may approve")
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q, want none (policy_approval is the git host's job)", cfg.Warnings)
	}

	off := parseAt(t, strings.Replace(strings.Replace(governanceYAML, "enabled: true", "enabled: false", 1), "audit_trail: true", "audit_trail: false", 1))
	if !off.Governance.EmergencyOff {
		t.Error("emergency_override.enabled: false leaves emergency exceptions on")
	}
	pe := &v1alpha1.PolicyException{ObjectMeta: metav1.ObjectMeta{Name: "hotfix", Namespace: "shop"}, Spec: v1alpha1.PolicyExceptionSpec{
		Policies: []string{noPrivileged}, Targets: []v1alpha1.ExceptionTarget{{Kinds: []string{"Deployment"}}}, Emergency: true,
		Reason: "incident 42", ApprovedBy: "on-call", ExpiresAt: metav1.NewTime(loadedAt.Add(time.Hour)),
	}}
	problems := exemptions.ValidateException(off.Governance, nil, pe, nil, loadedAt)
	if wantProblem := []string{"spec.emergency: emergency exceptions are turned off (governance.emergency_override.enabled: false); ask for a regular one"}; !reflect.DeepEqual(problems, wantProblem) {
		t.Errorf("an emergency PolicyException with emergency_override off: %q, want %q", problems, wantProblem)
	}
	if problems := exemptions.ValidateException(g, nil, pe, nil, loadedAt); len(problems) != 0 {
		t.Errorf("an emergency PolicyException with emergency_override on: %q", problems)
	}
	want := []string{"governance.emergency_override.audit_trail: false is not honoured: ATTEST always records who created and who approved an exception, and reports every exempted violation"}
	if !reflect.DeepEqual(off.Warnings, want) {
		t.Errorf("warnings %q, want %q", off.Warnings, want)
	}
}

func TestExemptionsList(t *testing.T) {
	cfg := parseAt(t, exemptionsYAML)
	subject := func(kind, ns, name string, now time.Time) exemptions.Subject {
		return exemptions.Subject{Kind: kind, Namespace: ns, Name: name, Now: now}
	}
	expires := time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		subject     exemptions.Subject
		wantExempt  bool
		wantProblem string
	}{
		{name: "the named object, before expires_at", subject: subject("Deployment", "monitoring", "node-exporter", expires.Add(-time.Second)), wantExempt: true},
		{name: "kind is matched as kubectl does", subject: subject("deployment", "monitoring", "node-exporter", loadedAt), wantExempt: true},
		{name: "at expires_at", subject: subject("Deployment", "monitoring", "node-exporter", expires), wantProblem: "config exemption exemptions[0] expired at 2026-07-15T00:00:00Z; it is ignored"},
		{name: "after expires_at", subject: subject("Deployment", "monitoring", "node-exporter", expires.Add(time.Hour)), wantProblem: "config exemption exemptions[0] expired at 2026-07-15T00:00:00Z; it is ignored"},
		{name: "another name", subject: subject("Deployment", "monitoring", "grafana", loadedAt)},
		{name: "another namespace", subject: subject("Deployment", "default", "node-exporter", loadedAt)},
		{name: "another kind", subject: subject("DaemonSet", "monitoring", "node-exporter", loadedAt)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := exemptions.Resolve(context.Background(), cfg.Governance, nil, nil, tt.subject)
			ex, problems := out.For(cfg.Governance, noPrivileged, false)
			if (ex != nil) != tt.wantExempt {
				t.Fatalf("exempted = %v (%+v), want %v; problems %q", ex != nil, ex, tt.wantExempt, problems)
			}
			if ex != nil {
				if ex.Approver != "security-team-lead" || ex.Source != "config" || ex.Name != "exemptions[0]" || !ex.Expires.Equal(expires) {
					t.Errorf("exemption = %+v", ex)
				}
				if got := ex.Describe(); got != "config exemptions[0] (approved by security-team-lead, expires 2026-07-15T00:00:00Z)" {
					t.Errorf("Describe() = %q", got)
				}
			}
			if tt.wantProblem != "" && (len(problems) != 1 || problems[0] != tt.wantProblem) {
				t.Errorf("problems %q, want %q", problems, tt.wantProblem)
			}
			if other, _ := out.For(cfg.Governance, trustedRegistries, false); other != nil {
				t.Errorf("the exemption waives %s too", trustedRegistries)
			}
		})
	}
}

func TestExemptionsListAtLoad(t *testing.T) {
	e := newEngine(t)
	at := func(now time.Time) config.Options { return config.Options{Now: func() time.Time { return now }} }
	// expires_at is 2026-07-15: within 30 days of 2026-06-15, beyond them from 2026-06-14.
	if _, err := config.ParseWith([]byte(exemptionsYAML), e, at(loadedAt.Add(-24*time.Hour))); err == nil ||
		err.Error() != "exemptions[0].expires_at: 2026-07-15T00:00:00Z is beyond the maximum of 30 days from now (governance.exemption_approval.max_duration or exemptions.maxDuration; latest allowed: 2026-07-14T00:00:00Z)" {
		t.Errorf("an expiry beyond the maximum: error %v", err)
	}
	longer := "governance:\n  exemption_approval:\n    max_duration: \"60d\"\n" + exemptionsYAML
	if _, err := config.ParseWith([]byte(longer), e, at(loadedAt.Add(-24*time.Hour))); err != nil {
		t.Errorf("governance max_duration 60d: %v", err)
	}
	expired, err := config.ParseWith([]byte(exemptionsYAML), e, at(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatalf("an expired exemption must not make the file invalid: %v", err)
	}
	if want := []string{"exemptions[0]: expired at 2026-07-15T00:00:00Z, so it exempts nothing; remove it"}; !reflect.DeepEqual(expired.Warnings, want) {
		t.Errorf("warnings %q, want %q", expired.Warnings, want)
	}
}

func TestComplianceBlocks(t *testing.T) {
	cfg := parseAt(t, complianceYAML)
	var ids []string
	for _, c := range cfg.Controls(cfg.Engine, "soc2") {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"CC6.1", "CC7.2"}) {
		t.Errorf("soc2 controls in scope = %v, want [CC6.1 CC7.2] (the listed ones some policy serves)", ids)
	}
	for _, name := range []string{"gdpr-annotations", "soc2-audit-logging"} {
		if got := cfg.Policies[name].Mode; got != policies.ModeEnforce {
			t.Errorf("%s: mode %q, want enforce", name, got)
		}
	}
	want := []string{
		`compliance.gdpr.required_annotations: "gdpr.company.com/data-classification" is not checked: gdpr-annotations requires gdpr.attest.continuu.ms/lawful-basis, gdpr.attest.continuu.ms/data-controller, gdpr.attest.continuu.ms/retention-period on workloads marked gdpr.attest.continuu.ms/personal-data, and cannot be given other keys yet`,
		"compliance.hipaa.audit_logging.retention_days: not enforced: ATTEST checks that workloads declare audit logging (soc2-audit-logging), not how logs are kept",
		"compliance.hipaa.encryption.at_rest: not enforced: ATTEST judges what is admitted to the cluster and cannot see how data is encrypted",
		"compliance.hipaa.encryption.in_transit: not enforced: ATTEST judges what is admitted to the cluster and cannot see how data is encrypted",
		"compliance.hipaa.access_controls.rbac_required: not enforced: access to the cluster and its data is RBAC's and the identity provider's, not an admission policy's",
		"compliance.hipaa.data_classification.required: not enforced: no ATTEST policy checks a data classification yet",
		"compliance.soc2.controls[2]: no ATTEST policy serves control CC9.9; it is not checked (map one with {control: CC9.9, policy: NAME})",
	}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, want)
	}

	// A policies: entry says how a policy runs; a framework turned off maps nothing.
	kept := parseAt(t, complianceYAML+"policies:\n  - name: gdpr-annotations\n    enforcement: warn\n")
	if got := kept.Policies["gdpr-annotations"].Mode; got != policies.ModeAudit {
		t.Errorf("gdpr-annotations configured warn: mode %q", got)
	}
	disabled := parseAt(t, strings.Replace(complianceYAML, "  hipaa:\n    enabled: true", "  hipaa:\n    enabled: false", 1))
	if got := disabled.Policies["soc2-audit-logging"].Mode; got != policies.ModeAudit {
		t.Errorf("hipaa disabled: soc2-audit-logging mode %q, want its default audit", got)
	}
}

func TestDocumentBlockErrors(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"policy block is a string", "policy: on\n", "policy: got boolean, want object"},
		{"fail_on_violation is a string", "policy:\n  fail_on_violation: \"no\"\n", "policy.fail_on_violation: got string, want boolean"},
		{"unknown policy setting", "policy:\n  failOnViolation: false\n", `unknown field "policy.failOnViolation"`},
		{"custom policy severity is a number", "policy:\n  custom_policies:\n    - name: a\n      rego_code: x\n    - name: b\n      severity: 1\n", "policy.custom_policies[1].severity: got number, want string"},
		{"unknown custom policy field", "policy:\n  custom_policies:\n    - name: a\n      rego: x\n", `unknown field "policy.custom_policies[0].rego"`},
		{"custom policy without a name", "policy:\n  custom_policies:\n    - rego_code: \"package a\"\n", "policy.custom_policies[0].name: required"},
		{"custom policy with a bad severity", "policy:\n  custom_policies:\n    - name: a\n      severity: urgent\n      rego_code: \"package a\"\n", `policy.custom_policies[0].severity: unknown severity "urgent" (want critical, high, medium or low)`},
		{"custom policy named as a library policy", "policy:\n  custom_policies:\n    - name: no-privileged\n      rego_code: \"package a\"\n", `policy.custom_policies[0].name: "no-privileged" is a library policy; give the custom policy a name of its own`},
		{"custom policy calls http.send", "policy:\n  custom_policies:\n    - name: phone-home\n      rego_code: |\n        package attest.custom.phone_home\n\n        violation[{\"msg\": \"x\"}] {\n          http.send({\"method\": \"GET\", \"url\": \"https://example.com\"})\n        }\n",
			"policy.custom_policies[0].rego_code: 1 error occurred: custom_policies/phone-home:4: rego_compile_error: http.send is not allowed in ATTEST policies: it reaches the network; policies must be pure functions of their input"},
		{"custom policy names itself otherwise", "policy:\n  custom_policies:\n    - name: a\n      rego_code: |\n        # METADATA\n        # custom:\n        #   name: b\n        package attest.custom.b\n\n        violation[{\"msg\": \"x\"}] { true }\n",
			`policy.custom_policies[0].rego_code: the policy is named [b] (METADATA custom.name or the package); it must be "a", the custom policy's name`},
		{"required_approvers is a string", "governance:\n  exemption_approval:\n    required_approvers: two\n", "governance.exemption_approval.required_approvers: got string, want integer"},
		{"unknown governance field", "governance:\n  exemption_approval:\n    max_duraton: 30d\n", `unknown field "governance.exemption_approval.max_duraton"`},
		{"bad max_duration", "governance:\n  exemption_approval:\n    max_duration: a month\n", `governance.exemption_approval.max_duration: "a month" is not a duration (want e.g. 30d, 72h or 2w)`},
		{"set in both places", "governance:\n  exemption_approval:\n    max_duration: 30d\nexemptions:\n  maxDuration: 14d\n", "governance.exemption_approval.max_duration: also set as exemptions.maxDuration; set it in one place"},
		{"exemptions is a string", "exemptions: none\n", "exemptions: got string, want a mapping (ATTEST's exemption governance: annotationGroups, maxDuration, approval, …) or a list (temporary exemptions: policy_name, resource_kind, resource_name, resource_namespace, reason, expires_at, approved_by)"},
		{"exemption expires_at is a number", strings.Replace(exemptionsYAML, `"2026-07-15T00:00:00Z"`, "20260715", 1), "exemptions[0].expires_at: got number, want string"},
		{"exemption expires_at is a date", strings.Replace(exemptionsYAML, `"2026-07-15T00:00:00Z"`, "2026-07-15", 1), `exemptions[0].expires_at: "2026-07-15" is not an RFC 3339 time (e.g. 2026-06-22T00:00:00Z)`},
		{"exemption without approved_by", strings.Replace(exemptionsYAML, `    approved_by: "security-team-lead"`+"\n", "", 1), "exemptions[0].approved_by: required (an exemption names policy_name, resource_kind, resource_name, resource_namespace, reason, expires_at and approved_by)"},
		{"exemption of an unknown policy", strings.Replace(exemptionsYAML, `"no-privileged"`, `"no-root"`, 1), "exemptions[0].policy_name: unknown policy \"no-root\" (see `attest policy list`)"},
		{"unknown exemption field", strings.Replace(exemptionsYAML, "approved_by", "approver", 1), `unknown field "exemptions[0].approver"`},
		{"unknown field in the governance mapping", "exemptions:\n  maxduration: 30d\n", `unknown field "exemptions.maxduration"`},
		{"gdpr required_annotations is a string", "compliance:\n  gdpr:\n    required_annotations: gdpr.company.com/x\n", "compliance.gdpr.required_annotations: got string, want array"},
		{"require_annotations is a string", "compliance:\n  gdpr:\n    data_protection:\n      require_annotations: \"yes\"\n", "compliance.gdpr.data_protection.require_annotations: got string, want boolean"},
		{"a control is a number", "compliance:\n  soc2:\n    controls: [CC6.1, 7]\n", "compliance.soc2.controls[1]: got number, want a control ID or {control, policy, description}"},
		{"hipaa key under soc2", "compliance:\n  soc2:\n    encryption: {at_rest: true}\n", "compliance.soc2.encryption: only the hipaa block takes encryption"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.ParseWith([]byte(tt.yaml), e, config.Options{Now: func() time.Time { return loadedAt }})
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", cfg, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
		})
	}
}
