package config

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/policies"
)

// customSourcePrefix names the source of a custom_policies entry in compiler messages and `attest policy list`.
const customSourcePrefix = "custom_policies/"

// compileCustom compiles the documents' custom_policies with the library, through the same compiler and purity
// rules as a custom Policy resource's Rego, and makes the result the configuration's engine. A custom policy is
// named by its entry: unless its Rego has a METADATA block of its own, one is written from name, description and
// severity (mode enforce: policy.fail_on_violation: false or a policies: entry makes it audit).
func (cfg *Config) compileCustom(o Options, list []CustomPolicy) error {
	lib := o.Library
	if lib == nil {
		var err error
		if lib, _, err = policies.Library(); err != nil {
			return fmt.Errorf("policy.custom_policies: read the policy library: %w", err)
		}
	}
	ctx := context.Background()
	seen := map[string]int{}
	srcs := make([]policies.Source, 0, len(list))
	for i, cp := range list {
		field := fmt.Sprintf("policy.custom_policies[%d]", i)
		name := strings.TrimSpace(cp.Name)
		switch {
		case name == "":
			return fmt.Errorf("%s.name: required", field)
		case !policies.IsLabel(name):
			return fmt.Errorf("%s.name: %q is not a policy name (lower-case letters, digits and '-', at most 63 characters)", field, cp.Name)
		}
		if prev, dup := seen[name]; dup {
			return fmt.Errorf("%s.name: %q is already the name of policy.custom_policies[%d]", field, name, prev)
		}
		seen[name] = i
		if _, taken := cfg.Engine.Lookup(name); taken {
			return fmt.Errorf("%s.name: %q is a library policy; give the custom policy a name of its own", field, name)
		}
		sev := policies.SeverityMedium
		if cp.Severity != "" {
			var err error
			if sev, err = policies.ParseSeverity(cp.Severity); err != nil {
				return fmt.Errorf("%s.severity: %w", field, err)
			}
		}
		if strings.TrimSpace(cp.RegoCode) == "" {
			return fmt.Errorf("%s.rego_code: required (the policy's Rego)", field)
		}
		text, err := withMetadata(cp, name, sev)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		srcs = append(srcs, policies.Source{Name: customSourcePrefix + name, Text: text})
	}
	e, err := policies.Compile(ctx, append(append([]policies.Source(nil), lib...), srcs...))
	if err != nil {
		// Say which entry is at fault, with the lines of its Rego as written (not the METADATA written above it).
		for i, cp := range list {
			field := fmt.Sprintf("policy.custom_policies[%d].rego_code", i)
			if err := compileOne(ctx, lib, policies.Source{Name: srcs[i].Name, Text: cp.RegoCode}); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			if err := compileOne(ctx, lib, srcs[i]); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		}
		return fmt.Errorf("policy.custom_policies: the custom policies do not compile together: %w", err)
	}
	for i := range list {
		if err := namedAs(e, srcs[i].Name, strings.TrimSpace(list[i].Name), "the custom policy's name"); err != nil {
			return fmt.Errorf("policy.custom_policies[%d].rego_code: %w", i, err)
		}
	}
	if e, err = keepOtherLanguages(e, cfg.Engine); err != nil {
		return fmt.Errorf("policy.custom_policies: %w", err)
	}
	cfg.Engine, cfg.custom = e, srcs
	return nil
}

// keepOtherLanguages adds to e, compiled from Rego sources, the policies of other languages (Gatekeeper
// constraints) that from holds: recompiling the Rego must not drop them.
func keepOtherLanguages(e, from *policies.Engine) (*policies.Engine, error) {
	if from == nil {
		return e, nil
	}
	var other []*policies.Policy
	for _, p := range from.Policies() {
		if p.Evaluator() != nil {
			other = append(other, p)
		}
	}
	if len(other) == 0 {
		return e, nil
	}
	return e.With(other...)
}

// compileOne compiles one source with the library, as the engine would.
func compileOne(ctx context.Context, lib []policies.Source, src policies.Source) error {
	_, err := policies.Compile(ctx, append(append([]policies.Source(nil), lib...), src))
	return err
}

// namedAs checks that the policy the source defines is called name.
func namedAs(e *policies.Engine, file, name, whose string) error {
	if p, ok := e.Lookup(name); ok && p.File == file {
		return nil
	}
	var names []string
	for _, p := range e.Policies() {
		if p.File == file {
			names = append(names, p.Name)
		}
	}
	return fmt.Errorf("the policy is named %v (METADATA custom.name or the package); it must be %q, %s", names, name, whose)
}

// withMetadata writes a METADATA block from the entry above the package line of its Rego, unless the comments
// right above that line hold one already (its custom.name must then be the entry's name).
func withMetadata(cp CustomPolicy, name string, sev policies.Severity) (string, error) {
	lines := strings.Split(cp.RegoCode, "\n")
	pkg := -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "package" || strings.HasPrefix(t, "package ") || strings.HasPrefix(t, "package\t") {
			pkg = i
			break
		}
	}
	if pkg < 0 {
		return cp.RegoCode, nil // the compiler says what is missing
	}
	for j := pkg - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "#"); j-- {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[j]), "#")) == "METADATA" {
			return cp.RegoCode, nil
		}
	}
	custom := map[string]any{"name": name, "severity": string(sev), "mode": string(policies.ModeEnforce)}
	if cp.Level != "" {
		custom["level"] = cp.Level
	}
	md := map[string]any{"title": name, "custom": custom}
	if d := strings.TrimSpace(cp.Description); d != "" {
		md["description"] = d
		if !strings.Contains(d, "\n") {
			md["title"] = d
		}
	}
	y, err := yaml.Marshal(md)
	if err != nil {
		return "", fmt.Errorf("write METADATA: %w", err)
	}
	block := []string{"# METADATA"}
	for _, l := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		block = append(block, "# "+l)
	}
	out := append(append(append([]string(nil), lines[:pkg]...), block...), lines[pkg:]...)
	return strings.Join(out, "\n"), nil
}
