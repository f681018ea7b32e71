package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/continuums/attest/policies"
)

// The files the policy documents place, found by FindFiles.
const (
	// ProjectDir holds a project's files: .attest/policies.yaml and .attest/governance.yaml.
	ProjectDir = ".attest"
	// PoliciesFile and GovernanceFile are the project's files in ProjectDir; PoliciesFile is also the global
	// settings file in the user's configuration directory (~/.config/attest/policies.yaml).
	PoliciesFile   = "policies.yaml"
	GovernanceFile = "governance.yaml"
)

// FindFiles lists the configuration files that apply in dir, most general first: the global settings file
// (configHome/attest/policies.yaml; configHome is $XDG_CONFIG_HOME or ~/.config, empty for none), then the
// project's .attest/policies.yaml and .attest/governance.yaml from the nearest directory at or above dir that has
// either. The search goes up as git's does for .git, and stops at the repository root (a directory with .git), so
// a checkout never takes another project's files.
func FindFiles(dir, configHome string) ([]string, error) {
	var files []string
	if configHome != "" {
		global := filepath.Join(configHome, "attest", PoliciesFile)
		ok, err := isFile(global)
		if err != nil {
			return nil, err
		}
		if ok {
			files = append(files, global)
		}
	}
	if dir == "" {
		return files, nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		var found []string
		for _, name := range []string{PoliciesFile, GovernanceFile} {
			p := filepath.Join(dir, ProjectDir, name)
			ok, err := isFile(p)
			if err != nil {
				return nil, err
			}
			if ok {
				found = append(found, p)
			}
		}
		if len(found) > 0 {
			return append(files, found...), nil
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return files, nil // the repository root: the project ends here
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return files, nil
		}
		dir = parent
	}
}

// isFile reports whether p exists and is not a directory; a file that exists but cannot be read is an error later.
func isFile(p string) (bool, error) {
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("config %s: %w", p, err)
	case st.IsDir():
		return false, fmt.Errorf("config %s: is a directory", p)
	}
	return true, nil
}

// LoadFiles reads the files in order, each strictly as Load does, and layers them: a later file overrides an
// earlier one key by key (the policies and custom_policies lists by policy name, the compliance section by
// framework, the governance block by sub-block, the policy block by setting; any other key as a whole). Errors
// and warnings name the file and the field as written in it. One file is exactly Load.
func LoadFiles(paths []string, engine *policies.Engine, o Options) (*Config, error) {
	o = o.defaults()
	if len(paths) == 1 {
		data, err := os.ReadFile(paths[0])
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		o.Dir = filepath.Dir(paths[0])
		cfg, err := parseWith(data, engine, o)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", paths[0], err)
		}
		for i, w := range cfg.Warnings {
			cfg.Warnings[i] = paths[0] + ": " + w
		}
		cfg.Files = []string{paths[0]}
		return cfg, nil
	}
	var merged File
	orgs := &origins{files: paths}
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		f, err := decodeFile(data)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", p, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
		if !reflect.ValueOf(f.Trust).IsZero() {
			o.Dir = filepath.Dir(p) // the trust section comes whole from one file: its names are relative to it
		}
		merged.overlay(f, p, orgs)
	}
	cfg, err := build(merged, engine, o, hex.EncodeToString(h.Sum(nil)[:8]), orgs)
	if err != nil {
		return nil, err
	}
	cfg.Files = append([]string(nil), paths...)
	return cfg, nil
}

// origins remember, for each field of a merged file, the file and the field it was written as.
type origins struct {
	files []string
	// at maps a field prefix of the merged file (policies[3], policy.custom_policies[0], governance.emergency_override,
	// trust) to where it was written.
	at map[string]origin
}

type origin struct{ file, field string }

func (o *origins) set(merged, file, field string) {
	if o.at == nil {
		o.at = map[string]origin{}
	}
	o.at[merged] = origin{file, field}
}

// attribute puts the file in front of a message that starts with a field path, with the field as written in
// that file; a message about no one file names them all.
func (o *origins) attribute(err error) error {
	msg := err.Error()
	keys := make([]string, 0, len(o.at))
	for k := range o.at {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		if !strings.HasPrefix(msg, k) {
			continue
		}
		whole := strings.HasSuffix(k, ".") || strings.HasSuffix(k, "[")
		if rest := msg[len(k):]; !whole && rest != "" && !strings.ContainsRune(".[:", rune(rest[0])) {
			continue
		}
		at := o.at[k]
		return fmt.Errorf("config %s: %s%s", at.file, at.field, msg[len(k):])
	}
	return fmt.Errorf("config %s: %w", strings.Join(o.files, ", "), err)
}

// overlay lays f (read from file) over the merged file m, key by key, recording where each key came from.
func (m *File) overlay(f File, file string, orgs *origins) {
	m.Policies = overlayByName(m.Policies, f.Policies, func(e PolicyEntry) string { return e.Name }, "policies", file, orgs)
	if f.ProductionNamespaces != nil {
		m.ProductionNamespaces = f.ProductionNamespaces
		orgs.set("productionNamespaces", file, "productionNamespaces")
	}
	if f.Exemptions.hasMap {
		m.Exemptions.Config, m.Exemptions.hasMap = f.Exemptions.Config, true
		orgs.set("exemptions.", file, "exemptions.")
	}
	if f.Exemptions.hasList {
		m.Exemptions.List, m.Exemptions.hasList = f.Exemptions.List, true
		orgs.set("exemptions[", file, "exemptions[")
	}
	for fw, c := range f.Compliance {
		if m.Compliance == nil {
			m.Compliance = ComplianceSection{}
		}
		m.Compliance[fw] = c
		orgs.set("compliance."+fw, file, "compliance."+fw)
	}
	if !reflect.ValueOf(f.Trust).IsZero() {
		m.Trust = f.Trust
		orgs.set("trust", file, "trust")
	}
	if f.Mutation != (Mutation{}) {
		m.Mutation = f.Mutation
		orgs.set("mutation", file, "mutation")
	}
	if f.Governance != nil {
		if m.Governance == nil {
			m.Governance = &GovernanceSettings{}
		}
		g := f.Governance
		if g.ExemptionApproval != nil {
			m.Governance.ExemptionApproval = g.ExemptionApproval
			orgs.set("governance.exemption_approval", file, "governance.exemption_approval")
		}
		if g.EmergencyOverride != nil {
			m.Governance.EmergencyOverride = g.EmergencyOverride
			orgs.set("governance.emergency_override", file, "governance.emergency_override")
		}
		if g.PolicyApproval != nil {
			m.Governance.PolicyApproval = g.PolicyApproval
			orgs.set("governance.policy_approval", file, "governance.policy_approval")
		}
	}
	if f.Policy != nil {
		m.overlayPolicy(*f.Policy, file, orgs)
	}
	if len(f.PolicySources) > 0 {
		m.PolicySources = overlayByName(m.PolicySources, f.PolicySources, func(s PolicySourceConfig) string { return s.Name }, "policySources", file, orgs)
	}
	if f.Cedar != nil {
		c := *f.Cedar
		c.Directories = make([]string, len(f.Cedar.Directories))
		for i, d := range f.Cedar.Directories {
			if d != "" && !filepath.IsAbs(d) {
				d = filepath.Join(filepath.Dir(file), d) // relative to the file that names it
			}
			c.Directories[i] = d
		}
		m.Cedar = &c
		orgs.set("cedar", file, "cedar")
	}
}

// overlayByName lays entries over have: an entry replaces the one of the same (non-empty) name, or is appended.
// It records in orgs where each merged entry of the list at path ("policies") came from.
func overlayByName[T any](have, entries []T, name func(T) string, path, file string, orgs *origins) []T {
	for j, e := range entries {
		i := len(have)
		for k, h := range have {
			if name(e) != "" && name(h) == name(e) {
				i = k
			}
		}
		if i == len(have) {
			have = append(have, e)
		} else {
			have[i] = e
		}
		orgs.set(fmt.Sprintf("%s[%d]", path, i), file, fmt.Sprintf("%s[%d]", path, j))
	}
	return have
}

// overlayPolicy lays the policy block over m's setting by setting, custom_policies by name.
func (m *File) overlayPolicy(g GlobalSettings, file string, orgs *origins) {
	if m.Policy == nil {
		m.Policy = &GlobalSettings{}
	}
	p := m.Policy
	for _, b := range []struct {
		key string
		dst *(*bool)
		src *bool
	}{
		{"enabled", &p.Enabled, g.Enabled}, {"opa_enabled", &p.OPAEnabled, g.OPAEnabled},
		{"gatekeeper_enabled", &p.GatekeeperEnabled, g.GatekeeperEnabled}, {"fail_on_violation", &p.FailOnViolation, g.FailOnViolation},
	} {
		if b.src != nil {
			*b.dst = b.src
			orgs.set("policy."+b.key, file, "policy."+b.key)
		}
	}
	if g.PolicyBundleURL != "" {
		p.PolicyBundleURL = g.PolicyBundleURL
		orgs.set("policy.policy_bundle_url", file, "policy.policy_bundle_url")
	}
	if g.PolicyBundlePath != "" {
		p.PolicyBundlePath = g.PolicyBundlePath
		orgs.set("policy.policy_bundle_path", file, "policy.policy_bundle_path")
	}
	p.CustomPolicies = overlayByName(p.CustomPolicies, g.CustomPolicies, func(c CustomPolicy) string { return c.Name }, "policy.custom_policies", file, orgs)
}
