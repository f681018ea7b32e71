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
// `soc2: {enabled: true, controls: [{control: CC6.1, policy: no-privileged, description: …}]}`.
type ComplianceFramework struct {
	Enabled  *bool               `json:"enabled,omitempty"`
	Controls []ComplianceMapping `json:"controls,omitempty"`
}

// ComplianceMapping maps one control to one policy.
type ComplianceMapping struct {
	Control     string `json:"control"`
	Policy      string `json:"policy"`
	Description string `json:"description,omitempty"`
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
		for i, m := range f.Controls {
			field := fmt.Sprintf("compliance.%s.controls[%d]", fw, i)
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
// config's additions; a framework set `enabled: false` has none. Sorted by control.
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
	for _, m := range f.Controls {
		add(m.Control, m.Policy, m.Description)
	}
	out := make([]Control, 0, len(byID))
	for _, c := range byID {
		sort.Strings(c.Policies)
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
