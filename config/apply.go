package config

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

// Options are what building a configuration takes from outside its files.
type Options struct {
	// Dir is where relative file names of the trust section resolve (Load: the file's directory).
	Dir string
	// Now is the time listed exemptions are judged against at load (their expiry within the governance maximum).
	// Default: the wall clock.
	Now func() time.Time
	// Library is what custom_policies compile with. Default: the embedded library.
	Library []policies.Source
}

func (o Options) defaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ParseWith is Parse with options: relative trust file names resolve against o.Dir, listed exemptions are judged
// at o.Now, custom_policies compile with o.Library.
func ParseWith(data []byte, engine *policies.Engine, o Options) (*Config, error) {
	return parseWith(data, engine, o)
}

// Policies the documents' compliance blocks turn on.
const (
	gdprAnnotationsPolicy = "gdpr-annotations"
	auditLoggingPolicy    = "soc2-audit-logging"
	gdprAnnotationPrefix  = "gdpr.attest.continuu.ms/"
)

// gdprAnnotations are the annotations gdpr-annotations requires.
var gdprAnnotations = []string{gdprAnnotationPrefix + "lawful-basis", gdprAnnotationPrefix + "data-controller", gdprAnnotationPrefix + "retention-period"}

// governanceConfig merges the documents' governance block into ATTEST's exemption governance. A setting written
// in both places is an error naming both, so nobody wonders which one holds.
func governanceConfig(f File, warnings *[]string) (exemptions.Config, error) {
	c := f.Exemptions.Config
	g := f.Governance
	if g == nil {
		return c, nil
	}
	both := func(doc, attest string) error {
		return fmt.Errorf("governance.%s: also set as exemptions.%s; set it in one place", doc, attest)
	}
	if a := g.ExemptionApproval; a != nil {
		if a.RequiredApprovers != nil {
			if c.Approval.RequiredApprovers != 0 {
				return c, both("exemption_approval.required_approvers", "approval.requiredApprovers")
			}
			if *a.RequiredApprovers < 1 {
				return c, fmt.Errorf("governance.exemption_approval.required_approvers: %d: at least 1 approval is required", *a.RequiredApprovers)
			}
			c.Approval.RequiredApprovers = *a.RequiredApprovers
		}
		if len(a.RequiredTeams) > 0 {
			if len(c.Approval.ApproverGroups) > 0 {
				return c, both("exemption_approval.required_teams", "approval.approverGroups")
			}
			for i, t := range a.RequiredTeams {
				if strings.TrimSpace(t) == "" {
					return c, fmt.Errorf("governance.exemption_approval.required_teams[%d]: empty name", i)
				}
			}
			c.Approval.ApproverGroups = a.RequiredTeams
		}
		if a.MaxDuration != "" {
			if c.MaxDuration != "" {
				return c, both("exemption_approval.max_duration", "maxDuration")
			}
			if _, err := exemptions.ParseDuration(a.MaxDuration); err != nil {
				return c, fmt.Errorf("governance.exemption_approval.max_duration: %w", err)
			}
			c.MaxDuration = a.MaxDuration
		}
	}
	if e := g.EmergencyOverride; e != nil {
		if e.Enabled != nil && !*e.Enabled {
			c.EmergencyOff = true
		}
		if e.RequiredApprovers != nil {
			if c.Approval.EmergencyApprovers != 0 {
				return c, both("emergency_override.required_approvers", "approval.emergencyApprovers")
			}
			if *e.RequiredApprovers < 1 {
				return c, fmt.Errorf("governance.emergency_override.required_approvers: %d: at least 1 approval is required", *e.RequiredApprovers)
			}
			c.Approval.EmergencyApprovers = *e.RequiredApprovers
		}
		if e.AuditTrail != nil && !*e.AuditTrail {
			*warnings = append(*warnings, "governance.emergency_override.audit_trail: false is not honoured: ATTEST always records who created and who approved an exception, and reports every exempted violation")
		}
	}
	if p := g.PolicyApproval; p != nil {
		if p.RequiredReviewers != nil && *p.RequiredReviewers < 0 {
			return c, fmt.Errorf("governance.policy_approval.required_reviewers: %d cannot be negative", *p.RequiredReviewers)
		}
		// Reviews of policy changes happen on the git host (branch protection, CODEOWNERS); nothing to enforce here.
	}
	return c, nil
}

// listedExemptions validates the documents' exemptions list: every field present, the policy known and
// exemptable, the expiry an RFC 3339 time within the governance maximum from now. An expired entry loads (a file
// must not turn invalid with time) and is warned about.
func (cfg *Config) listedExemptions(list []ListedExemption, engine *policies.Engine, now time.Time) ([]exemptions.Listed, error) {
	g := cfg.Governance
	out := make([]exemptions.Listed, 0, len(list))
	for i, x := range list {
		field := fmt.Sprintf("exemptions[%d]", i)
		for _, req := range []struct{ key, value string }{
			{"policy_name", x.PolicyName}, {"resource_kind", x.ResourceKind}, {"resource_name", x.ResourceName},
			{"resource_namespace", x.ResourceNamespace}, {"reason", x.Reason}, {"expires_at", x.ExpiresAt}, {"approved_by", x.ApprovedBy},
		} {
			if strings.TrimSpace(req.value) == "" {
				return nil, fmt.Errorf("%s.%s: required (an exemption names policy_name, resource_kind, resource_name, resource_namespace, reason, expires_at and approved_by)", field, req.key)
			}
		}
		if _, ok := engine.Lookup(x.PolicyName); !ok {
			return nil, fmt.Errorf("%s.policy_name: unknown policy %q (see `attest policy list`)", field, x.PolicyName)
		}
		if g.NonExemptable(x.PolicyName, false) {
			return nil, fmt.Errorf("%s.policy_name: policy %q cannot be exempted (exemptions.nonExemptable)", field, x.PolicyName)
		}
		if _, err := path.Match(x.ResourceName, ""); err != nil || strings.Contains(x.ResourceName, "/") {
			return nil, fmt.Errorf("%s.resource_name: %q is not a name or glob (e.g. web or web-*)", field, x.ResourceName)
		}
		expires, err := time.Parse(time.RFC3339, strings.TrimSpace(x.ExpiresAt))
		if err != nil {
			return nil, fmt.Errorf("%s.expires_at: %q is not an RFC 3339 time (e.g. %s)", field, x.ExpiresAt, now.Add(7*24*time.Hour).UTC().Format(time.RFC3339))
		}
		if latest := now.Add(g.MaxDuration); expires.After(latest) {
			return nil, fmt.Errorf("%s.expires_at: %s is beyond the maximum of %s from now (governance.exemption_approval.max_duration or exemptions.maxDuration; latest allowed: %s)",
				field, expires.UTC().Format(time.RFC3339), days(g.MaxDuration), latest.UTC().Format(time.RFC3339))
		}
		if !expires.After(now) {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: expired at %s, so it exempts nothing; remove it", field, expires.UTC().Format(time.RFC3339)))
		}
		out = append(out, exemptions.Listed{
			Field: field, Policy: x.PolicyName, Kind: strings.TrimSpace(x.ResourceKind), Namespace: strings.TrimSpace(x.ResourceNamespace),
			Name: strings.TrimSpace(x.ResourceName), Reason: strings.TrimSpace(x.Reason), ApprovedBy: strings.TrimSpace(x.ApprovedBy), Expires: expires,
		})
	}
	return out, nil
}

// days writes a duration as people read an exemption's maximum: "30 days", or Go's form when not whole days.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if n := int(d / (24 * time.Hour)); n != 1 {
			return fmt.Sprintf("%d days", n)
		}
		return "1 day"
	}
	return d.String()
}

// applyCompliance maps the documents' gdpr and hipaa blocks onto policies, which it enforces (the block says
// they are required), and warns about each setting ATTEST cannot check. A policy that a `policies:` entry
// configures keeps that entry's mode; policy.fail_on_violation: false still makes it audit.
func (cfg *Config) applyCompliance(engine *policies.Engine, f File, configured map[string]int) {
	require := func(policy, key string) {
		if _, ok := engine.Lookup(policy); !ok {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: asks for the policy %s, which this ATTEST does not have", key, policy))
			return
		}
		if i, ok := configured[policy]; ok {
			if cfg.Policies[policy].Mode == policies.ModeOff {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: asks for the policy %s, which policies[%d] turns off; it stays off", key, policy, i))
			}
			return // the entry says how it runs
		}
		s := cfg.Policies[policy]
		s.Mode = policies.ModeEnforce
		cfg.Policies[policy] = s
	}
	names := make([]string, 0, len(f.Compliance))
	for fw := range f.Compliance {
		names = append(names, fw)
	}
	sort.Strings(names)
	for _, fw := range names {
		c := f.Compliance[fw]
		prefix := "compliance." + fw
		if c.Enabled != nil && !*c.Enabled {
			continue
		}
		cfg.warnUnservedControls(engine, fw, c)
		cfg.requireAnnotations(prefix, c, require)
		// hipaa
		if c.AuditLogging != nil {
			cfg.auditLogging(prefix+".audit_logging", c.AuditLogging, require)
		}
		for _, block := range []struct {
			key   string
			value any
			why   string
		}{
			{"encryption", c.Encryption, "ATTEST judges what is admitted to the cluster and cannot see how data is encrypted"},
			{"access_controls", c.AccessControls, "access to the cluster and its data is RBAC's and the identity provider's, not an admission policy's"},
			{"data_classification", c.DataClassification, "no ATTEST policy checks a data classification yet"},
		} {
			for _, key := range requested(prefix+"."+block.key, block.value) {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: not enforced: %s", key, block.why))
			}
		}
	}
}

// requireAnnotations maps gdpr's data_protection.require_annotations: true, or a list of required_annotations
// (at the block's top or under data_protection) not switched off by require_annotations: false, onto
// gdpr-annotations, and names in one warning per list the annotations that policy does not check.
func (cfg *Config) requireAnnotations(prefix string, c ComplianceFramework, require func(policy, key string)) {
	type list struct {
		field string
		keys  []string
	}
	var lists []list
	on, off := false, false
	if dp := c.DataProtection; dp != nil {
		if dp.RequireAnnotations != nil {
			on, off = *dp.RequireAnnotations, !*dp.RequireAnnotations
		}
		if len(dp.RequiredAnnotations) > 0 {
			lists = append(lists, list{prefix + ".data_protection.required_annotations", dp.RequiredAnnotations})
		}
	}
	if len(c.RequiredAnnotations) > 0 {
		lists = append(lists, list{prefix + ".required_annotations", c.RequiredAnnotations})
	}
	if off || (!on && len(lists) == 0) {
		return
	}
	key := prefix + ".data_protection.require_annotations"
	if !on {
		key = lists[0].field
	}
	require(gdprAnnotationsPolicy, key)
	for _, l := range lists {
		var unchecked []string
		for _, a := range l.keys {
			if !slices.Contains(gdprAnnotations, a) {
				unchecked = append(unchecked, fmt.Sprintf("%q", a))
			}
		}
		if len(unchecked) == 0 {
			continue
		}
		verb := "are"
		if len(unchecked) == 1 {
			verb = "is"
		}
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: %s %s not checked: gdpr-annotations requires %s on workloads marked %spersonal-data, and cannot be given other keys yet",
			l.field, strings.Join(unchecked, ", "), verb, strings.Join(gdprAnnotations, ", "), gdprAnnotationPrefix))
	}
}

// auditLogging maps hipaa.audit_logging: true (or {enabled: true}) onto soc2-audit-logging, enforced; each other
// setting is one warning.
func (cfg *Config) auditLogging(key string, v any, require func(policy, key string)) {
	switch t := v.(type) {
	case bool:
		if t {
			require(auditLoggingPolicy, key)
		}
	case map[string]any:
		enabled, hasEnabled := t["enabled"].(bool)
		if !hasEnabled || enabled {
			require(auditLoggingPolicy, key)
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			if k != "enabled" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, leaf := range requested(key+"."+k, t[k]) {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: not enforced: ATTEST checks that workloads declare audit logging (soc2-audit-logging), not how logs are kept", leaf))
			}
		}
	default:
		for _, leaf := range requested(key, v) {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: not understood (want true, false or {enabled: true}); soc2-audit-logging is not turned on", leaf))
		}
	}
}

// requested lists the settings under key that ask for something: each leaf that is true, a non-empty string or
// list, or a number; false, empty and null ask for nothing.
func requested(key string, v any) []string {
	switch t := v.(type) {
	case nil:
		return nil
	case bool:
		if !t {
			return nil
		}
	case string:
		if strings.TrimSpace(t) == "" {
			return nil
		}
	case []any:
		if len(t) == 0 {
			return nil
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			out = append(out, requested(key+"."+k, t[k])...)
		}
		return out
	}
	return []string{key}
}

// warnUnservedControls names the controls a framework lists in scope that no policy serves.
func (cfg *Config) warnUnservedControls(engine *policies.Engine, fw string, c ComplianceFramework) {
	served := map[string]bool{}
	for _, p := range engine.Policies() {
		for _, id := range p.Compliance[fw] {
			served[id] = true
		}
	}
	for _, m := range c.Controls {
		if !m.idOnly {
			served[m.Control] = true
		}
	}
	for i, m := range c.Controls {
		if m.idOnly && !served[m.Control] {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("compliance.%s.controls[%d]: no ATTEST policy serves control %s; it is not checked (map one with {control: %s, policy: NAME})", fw, i, m.Control, m.Control))
		}
	}
}

// applyGlobal applies the documents' global switches to every policy (engine holds them all, to tell their
// engines apart), and warns about what they ask for that is not built yet.
func (cfg *Config) applyGlobal(g *GlobalSettings, engine *policies.Engine) {
	if g == nil {
		return
	}
	if g.PolicyBundleURL != "" {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("policy.policy_bundle_url: policy bundles are not supported yet: %s is not fetched (the embedded library and custom_policies apply)", g.PolicyBundleURL))
	}
	if g.PolicyBundlePath != "" {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("policy.policy_bundle_path: policy bundles are not supported yet: %s is not read (the embedded library and custom_policies apply)", g.PolicyBundlePath))
	}
	cfg.allOff = g.Enabled != nil && !*g.Enabled
	cfg.enginesOff = map[string]bool{}
	if g.OPAEnabled != nil && !*g.OPAEnabled {
		cfg.enginesOff["opa"] = true
	}
	if g.GatekeeperEnabled != nil && !*g.GatekeeperEnabled {
		cfg.enginesOff["gatekeeper"] = true
	}
	cfg.auditOnly = g.FailOnViolation != nil && !*g.FailOnViolation
	cfg.applySwitches(engine)
}

// applySwitches turns every policy off (policy.enabled: false), the policies of an engine switched off
// (policy.opa_enabled: false for Rego, policy.gatekeeper_enabled: false for Gatekeeper constraints), or every
// enforced one to audit (policy.fail_on_violation: false). engine tells the policies' engines apart.
func (cfg *Config) applySwitches(engine *policies.Engine) {
	if !cfg.allOff && !cfg.auditOnly && len(cfg.enginesOff) == 0 {
		return
	}
	engineOf := func(name string) string {
		if engine == nil {
			return ""
		}
		if p, ok := engine.Lookup(name); ok {
			return p.Engine()
		}
		return ""
	}
	for name, s := range cfg.Policies {
		switch {
		case cfg.allOff || cfg.enginesOff[engineOf(name)]:
			s.Mode = policies.ModeOff
		case cfg.auditOnly && s.Mode == policies.ModeEnforce:
			s.Mode = policies.ModeAudit
		}
		cfg.Policies[name] = s
	}
}
