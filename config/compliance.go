package config

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/continuums/attest/policies"
)

// ComplianceFramework is one framework of the config's compliance section, as in the policy documents:
// `soc2: {enabled: true, controls: [CC6.1, CC7.2]}` (the controls in scope) or
// `soc2: {controls: [{control: CC6.1, policy: no-privileged, description: …}]}` (a control mapped to a policy).
// gdpr and hipaa take the documents' own keys besides; see documents.go for what each maps onto.
type ComplianceFramework struct {
	Enabled  *bool               `json:"enabled,omitempty"`
	Controls []ComplianceMapping `json:"controls,omitempty"`

	// DataProtection and RequiredAnnotations (gdpr) turn gdpr-annotations on.
	DataProtection      *DataProtection `json:"data_protection,omitempty"`
	RequiredAnnotations []string        `json:"required_annotations,omitempty"`

	// The hipaa blocks, as the documents write them (a mapping of settings, or one value): audit_logging turns
	// soc2-audit-logging on; every setting ATTEST cannot check is named in a warning at load.
	Encryption         any `json:"encryption,omitempty"`
	AccessControls     any `json:"access_controls,omitempty"`
	AuditLogging       any `json:"audit_logging,omitempty"`
	DataClassification any `json:"data_classification,omitempty"`
}

// DataProtection is compliance.gdpr.data_protection.
type DataProtection struct {
	// RequireAnnotations turns gdpr-annotations on.
	RequireAnnotations  *bool    `json:"require_annotations,omitempty"`
	RequiredAnnotations []string `json:"required_annotations,omitempty"`
}

// ComplianceMapping maps one control to one policy, or (written as a bare control ID) puts a control in scope.
type ComplianceMapping struct {
	Control     string `json:"control"`
	Policy      string `json:"policy"`
	Description string `json:"description,omitempty"`
	// idOnly marks a bare control ID: the framework reports only the controls so listed.
	idOnly bool
}

// Control is one framework control with the policies that serve it.
type Control struct {
	Framework   string   `json:"framework"`
	ID          string   `json:"control"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies"`
}

var frameworkName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validateCompliance checks the compliance section against the engine's policies; errors name the field.
func validateCompliance(c map[string]ComplianceFramework, engine *policies.Engine) error {
	for fw, f := range c {
		if !frameworkName.MatchString(fw) {
			return fmt.Errorf("compliance.%s: framework names are lower-case (soc2, gdpr, hipaa)", fw)
		}
		for _, k := range []struct {
			key, framework string
			set            bool
		}{
			{"data_protection", "gdpr", f.DataProtection != nil}, {"required_annotations", "gdpr", f.RequiredAnnotations != nil},
			{"encryption", "hipaa", f.Encryption != nil}, {"access_controls", "hipaa", f.AccessControls != nil},
			{"audit_logging", "hipaa", f.AuditLogging != nil}, {"data_classification", "hipaa", f.DataClassification != nil},
		} {
			if k.set && fw != k.framework {
				return fmt.Errorf("compliance.%s.%s: only the %s block takes %s", fw, k.key, k.framework, k.key)
			}
		}
		for i, m := range f.Controls {
			field := fmt.Sprintf("compliance.%s.controls[%d]", fw, i)
			if m.idOnly {
				if strings.TrimSpace(m.Control) == "" {
					return fmt.Errorf("%s: empty control ID", field)
				}
				continue
			}
			if strings.TrimSpace(m.Control) == "" {
				return fmt.Errorf("%s.control: required", field)
			}
			if _, ok := engine.Lookup(m.Policy); !ok {
				return fmt.Errorf("%s.policy: unknown policy %q (see `attest policy list`)", field, m.Policy)
			}
		}
	}
	return nil
}

// Controls lists a framework's controls and the policies behind each: the policies' METADATA mapping, plus the
// config's additions; a framework set `enabled: false` has none, and one that lists bare control IDs has only
// those. Sorted by control.
func (cfg *Config) Controls(engine *policies.Engine, framework string) []Control {
	framework = strings.ToLower(framework)
	f, configured := cfg.Compliance[framework]
	if configured && f.Enabled != nil && !*f.Enabled {
		return nil
	}
	byID := map[string]*Control{}
	add := func(id, policy, desc string) {
		c := byID[id]
		if c == nil {
			c = &Control{Framework: framework, ID: id}
			byID[id] = c
		}
		if !slices.Contains(c.Policies, policy) {
			c.Policies = append(c.Policies, policy)
		}
		if c.Description == "" {
			c.Description = desc
		}
	}
	for _, p := range engine.Policies() {
		for _, id := range p.Compliance[framework] {
			add(id, p.Name, "")
		}
	}
	scope := map[string]bool{}
	for _, m := range f.Controls {
		if m.idOnly {
			scope[m.Control] = true
			continue
		}
		add(m.Control, m.Policy, m.Description)
	}
	out := make([]Control, 0, len(byID))
	for id, c := range byID {
		if len(scope) > 0 && !scope[id] {
			continue
		}
		sort.Strings(c.Policies)
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
