package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// Resources are the cluster's Policy and PolicyConfig objects, and the bundles the policy sources loaded.
type Resources struct {
	Policies []v1alpha1.Policy
	Configs  []v1alpha1.PolicyConfig
	Sources  []v1alpha1.PolicySource
	Bundles  []LoadedBundle
}

// ResourceStatus is what ATTEST reports on one Policy or PolicyConfig.
type ResourceStatus struct {
	Valid      bool
	Message    string
	Effective  map[string]any // the policy's effective parameters
	Generation int64
}

// Overlay applies the cluster's resources on top of base (the file configuration): built-in defaults < config
// file < Policy < PolicyConfig lists. Custom Rego compiles into a new engine (lib + every valid custom policy). An
// invalid resource is reported in the statuses and ignored; for it, prev's settings (the last good ones) are kept.
func Overlay(ctx context.Context, lib []policies.Source, base, prev *Config, r Resources) *Config {
	out := *base
	out.Policies = maps.Clone(base.Policies)
	out.Resources = map[string]ResourceStatus{}
	clusterSources(&out, r.Sources)
	engine := out.Engine
	if engine == nil && prev != nil {
		engine = prev.Engine
	}
	engine = customEngine(ctx, lib, engine, r, &out)
	if engine != nil {
		engine = cedarEngine(engine, r, prev, &out)
	}
	if engine != nil && len(r.Bundles) > 0 {
		engine = bundleEngine(engine, r.Bundles, &out)
	}
	out.Engine = engine
	lookup := func(name string) (*policies.Policy, bool) {
		if engine != nil {
			return engine.Lookup(name)
		}
		return nil, false
	}
	for _, pol := range r.Policies {
		key := "Policy/" + pol.Name
		if st, failed := out.Resources[key]; failed && !st.Valid {
			keepPrevious(&out, prev, pol.Name)
			continue
		}
		p, ok := lookup(pol.Name)
		if !ok {
			out.Resources[key] = ResourceStatus{Message: fmt.Sprintf("unknown policy %q: name a library policy (see `attest policy list`) or set spec.rego", pol.Name), Generation: pol.Generation}
			continue
		}
		s, err := policySettings(p, out.Policies[pol.Name], pol.Spec)
		if err != nil {
			out.Resources[key] = ResourceStatus{Message: err.Error(), Generation: pol.Generation}
			keepPrevious(&out, prev, pol.Name)
			continue
		}
		out.Policies[pol.Name] = s
		out.Resources[key] = ResourceStatus{Valid: true, Effective: s.Params, Generation: pol.Generation}
	}
	applyPolicyConfigs(&out, prev, r.Configs, lookup)
	if err := out.rebuildTrustedRegistries(); err != nil {
		keepPrevious(&out, prev, TrustedRegistriesPolicy) // entries are schema-checked; this is a backstop
	}
	out.applySwitches(engine) // policy.enabled / fail_on_violation hold over the cluster's resources too
	return &out
}

// customEngine compiles the library with every Policy's Rego; a custom policy that does not compile is reported
// and left out, and the others still load. Without custom Rego it returns engine unchanged.
func customEngine(ctx context.Context, lib []policies.Source, engine *policies.Engine, r Resources, out *Config) *policies.Engine {
	var custom []v1alpha1.Policy
	for _, p := range r.Policies {
		if strings.TrimSpace(p.Spec.Rego) != "" {
			custom = append(custom, p)
		}
	}
	if len(custom) == 0 {
		return engine
	}
	lib = append(append([]policies.Source(nil), lib...), out.custom...) // the file's custom_policies
	srcs := append([]policies.Source(nil), lib...)
	for _, p := range custom {
		if err := CheckCustomRego(ctx, lib, p.Name, p.Spec.Rego); err != nil {
			out.Resources["Policy/"+p.Name] = ResourceStatus{Message: err.Error(), Generation: p.Generation}
			continue
		}
		srcs = append(srcs, policies.Source{Name: "Policy/" + p.Name, Text: p.Spec.Rego})
	}
	e, err := policies.Compile(ctx, srcs)
	if err != nil { // each compiled alone; together they clash (e.g. the same package twice)
		for _, p := range custom {
			out.Resources["Policy/"+p.Name] = ResourceStatus{Message: "custom policies do not compile together: " + err.Error(), Generation: p.Generation}
		}
		return engine
	}
	if e, err = keepOtherLanguages(e, engine); err == nil && len(out.bundled) > 0 {
		e, err = e.With(regoOnly(out.bundled)...) // policy.policy_bundle_path's Rego stays; its other languages were kept
	}
	if err != nil { // a custom Policy named like a constraint or a bundle's policy
		for _, p := range custom {
			out.Resources["Policy/"+p.Name] = ResourceStatus{Message: err.Error(), Generation: p.Generation}
		}
		return engine
	}
	return e
}

// regoOnly are the Rego policies of ps: the ones recompiling the engine drops.
func regoOnly(ps []*policies.Policy) []*policies.Policy {
	var out []*policies.Policy
	for _, p := range ps {
		if p.Evaluator() == nil {
			out = append(out, p)
		}
	}
	return out
}

// CheckCustomRego compiles one custom policy with the library, as the engine would, and checks that its name is
// the Policy's: the validating webhook and the loader use it alike.
func CheckCustomRego(ctx context.Context, lib []policies.Source, name, rego string) error {
	e, err := policies.Compile(ctx, append(append([]policies.Source(nil), lib...), policies.Source{Name: "Policy/" + name, Text: rego}))
	if err != nil {
		return fmt.Errorf("spec.rego: %w", err)
	}
	if err := namedAs(e, "Policy/"+name, name, "the Policy's name"); err != nil {
		return fmt.Errorf("spec.rego: %w", err)
	}
	return nil
}

// policySettings layers a Policy's spec over the settings the file gave.
func policySettings(p *policies.Policy, file policies.Settings, spec v1alpha1.PolicySpec) (policies.Settings, error) {
	mode := file.Mode
	if mode == "" {
		mode = p.DefaultMode
	}
	if spec.Mode != "" {
		m, err := policies.ParseMode(spec.Mode)
		if err != nil {
			return policies.Settings{}, fmt.Errorf("spec.mode: %w", err)
		}
		mode = m
	}
	params := maps.Clone(file.Params)
	if spec.Parameters != nil && len(spec.Parameters.Raw) > 0 {
		var over map[string]any
		if err := json.Unmarshal(spec.Parameters.Raw, &over); err != nil {
			return policies.Settings{}, fmt.Errorf("spec.parameters: must be an object: %w", err)
		}
		if params == nil {
			params = map[string]any{}
		}
		maps.Copy(params, over)
	}
	s, err := p.NewSettings(mode, params)
	if err != nil {
		var pe *policies.ParamsError
		if errors.As(err, &pe) {
			return policies.Settings{}, errors.New(pe.Prefixed("spec.parameters"))
		}
		return policies.Settings{}, fmt.Errorf("spec.parameters: %w", err)
	}
	// The file's rollout block stays unless the Policy sets its own.
	s.Match, s.EnforceAfter, s.ExistingWorkloads, s.Mutate = file.Match, file.EnforceAfter, file.ExistingWorkloads, file.Mutate
	r := Rollout{Mutate: spec.Mutate || file.Mutate, ExistingWorkloads: spec.ExistingWorkloads}
	if spec.Match != nil {
		r.Match = &policies.MatchSpec{Kinds: spec.Match.Kinds, Namespaces: spec.Match.Namespaces, ExcludedNamespaces: spec.Match.ExcludedNamespaces,
			NamespaceSelector: spec.Match.NamespaceSelector, ObjectSelector: spec.Match.ObjectSelector}
	}
	if spec.EnforceAfter != nil {
		r.EnforceAfter = spec.EnforceAfter.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	if err := applyRollout(p, &s, r, "spec"); err != nil {
		return policies.Settings{}, err
	}
	return s, nil
}

// applyPolicyConfigs merges PolicyConfig parameters: lists from all of them are concatenated without duplicates
// (several teams contribute trusted registries); a scalar set to different values is a conflict, reported on each
// PolicyConfig involved, and the last good value is kept.
func applyPolicyConfigs(out, prev *Config, configs []v1alpha1.PolicyConfig, lookup func(string) (*policies.Policy, bool)) {
	sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	byPolicy := map[string][]v1alpha1.PolicyConfig{}
	for _, pc := range configs {
		byPolicy[pc.Spec.Policy] = append(byPolicy[pc.Spec.Policy], pc)
	}
	names := make([]string, 0, len(byPolicy))
	for n := range byPolicy {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, policy := range names {
		group := byPolicy[policy]
		p, ok := lookup(policy)
		if !ok {
			for _, pc := range group {
				out.Resources["PolicyConfig/"+pc.Name] = ResourceStatus{Message: fmt.Sprintf("unknown policy %q (see `attest policy list`)", policy), Generation: pc.Generation}
			}
			continue
		}
		current := out.Policies[policy]
		params := maps.Clone(current.Params)
		if params == nil {
			params = map[string]any{}
		}
		setBy := map[string]string{}
		var conflicts []string
		valid := map[string]bool{}
		invalid := false
		for _, pc := range group {
			var contributed map[string]any
			if pc.Spec.Parameters == nil || json.Unmarshal(pc.Spec.Parameters.Raw, &contributed) != nil {
				out.Resources["PolicyConfig/"+pc.Name] = ResourceStatus{Message: "spec.parameters: must be an object", Generation: pc.Generation}
				invalid = true
				continue
			}
			if err := p.ValidateParams(contributed); err != nil {
				var pe *policies.ParamsError
				msg := err.Error()
				if errors.As(err, &pe) {
					msg = pe.Prefixed("spec.parameters")
				}
				out.Resources["PolicyConfig/"+pc.Name] = ResourceStatus{Message: msg, Generation: pc.Generation}
				invalid = true
				continue
			}
			valid[pc.Name] = true
			for k, v := range contributed {
				list, isList := v.([]any)
				if existing, ok := params[k].([]any); ok && isList {
					params[k] = appendUnique(existing, list)
					continue
				}
				if by, set := setBy[k]; set && !reflect.DeepEqual(params[k], v) {
					conflicts = append(conflicts, fmt.Sprintf("parameter %s is set differently by PolicyConfigs %s and %s", k, by, pc.Name))
					continue
				}
				params[k], setBy[k] = v, pc.Name
			}
		}
		if invalid && prev != nil {
			// A bad update must not drop what a team contributed before it: keep the last good parameters.
			keepPrevious(out, prev, policy)
			continue
		}
		if len(conflicts) > 0 {
			msg := strings.Join(conflicts, "; ") + "; the last good value is kept"
			for name := range valid {
				out.Resources["PolicyConfig/"+name] = ResourceStatus{Message: msg}
			}
			keepPrevious(out, prev, policy)
			continue
		}
		s, err := p.NewSettings(current.Mode, params)
		if err != nil {
			for name := range valid {
				out.Resources["PolicyConfig/"+name] = ResourceStatus{Message: "merged parameters are invalid: " + err.Error()}
			}
			keepPrevious(out, prev, policy)
			continue
		}
		s.Match, s.EnforceAfter, s.ExistingWorkloads, s.Mutate = current.Match, current.EnforceAfter, current.ExistingWorkloads, current.Mutate
		out.Policies[policy] = s
		for _, pc := range group {
			if valid[pc.Name] {
				out.Resources["PolicyConfig/"+pc.Name] = ResourceStatus{Valid: true, Effective: s.Params, Generation: pc.Generation}
			}
		}
	}
}

// rebuildTrustedRegistries derives the trusted_registry facts from the effective trusted-registries parameter.
func (cfg *Config) rebuildTrustedRegistries() error {
	s, ok := cfg.Policies[TrustedRegistriesPolicy]
	if !ok {
		return nil
	}
	raw, _ := s.Params[TrustedRegistriesParam].([]any)
	entries := make([]string, 0, len(raw))
	for _, e := range raw {
		str, _ := e.(string) // the parameter schema already requires strings
		entries = append(entries, str)
	}
	tr, err := attestation.NewTrustedRegistries(entries)
	if err != nil {
		return fmt.Errorf("parameters.%s%w", TrustedRegistriesParam, err)
	}
	cfg.TrustedRegistries = tr
	return nil
}

func appendUnique(list, more []any) []any {
	out := append([]any(nil), list...)
	for _, v := range more {
		dup := false
		for _, have := range out {
			if reflect.DeepEqual(have, v) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// keepPrevious restores the last good settings of a policy whose resources are invalid now.
func keepPrevious(out, prev *Config, policy string) {
	if prev == nil {
		return
	}
	if s, ok := prev.Policies[policy]; ok {
		out.Policies[policy] = s
		if policy == "trusted-registries" {
			out.TrustedRegistries = prev.TrustedRegistries
		}
	}
}

// ValidatePolicy checks a Policy as the validating webhook admits it: custom Rego compiles purely (the
// compiler's message, with its line), or the name is a known policy; mode, parameters (against the policy's
// schema) and the rollout block are valid. lib may be nil when custom Rego is not accepted.
func ValidatePolicy(ctx context.Context, lib []policies.Source, cfg *Config, engine *policies.Engine, pol *v1alpha1.Policy) error {
	if strings.TrimSpace(pol.Spec.Cedar) != "" {
		if err := CheckCedar(pol); err != nil {
			return err
		}
		p, err := CedarPolicy(pol.Name, "Policy/"+pol.Name, pol.Spec.Cedar, cfg.CedarOptions())
		if err != nil {
			return fmt.Errorf("spec.cedar: %w", err)
		}
		if prev, taken := engine.Lookup(pol.Name); taken {
			if _, isCedar := prev.Evaluator().(*cedar.Evaluator); !isCedar {
				return fmt.Errorf("metadata.name: %q is already a policy (library, custom Rego or a .cedar file); give the Cedar policy a name of its own", pol.Name)
			}
		}
		_, err = policySettings(p, cfg.Policies[pol.Name], pol.Spec)
		return err
	}
	if strings.TrimSpace(pol.Spec.Rego) != "" {
		if lib == nil {
			return errors.New("spec.rego: custom Rego is not accepted by this ATTEST")
		}
		if err := CheckCustomRego(ctx, lib, pol.Name, pol.Spec.Rego); err != nil {
			return err
		}
		e, err := policies.Compile(ctx, append(append([]policies.Source(nil), lib...), policies.Source{Name: "Policy/" + pol.Name, Text: pol.Spec.Rego}))
		if err != nil {
			return fmt.Errorf("spec.rego: %w", err)
		}
		engine = e
	}
	p, ok := engine.Lookup(pol.Name)
	if !ok {
		return fmt.Errorf("metadata.name: unknown policy %q: a Policy is named after a library policy (see `attest policy list`) or defines spec.rego", pol.Name)
	}
	_, err := policySettings(p, cfg.Policies[pol.Name], pol.Spec)
	return err
}

// ValidatePolicyConfig checks a PolicyConfig: the policy exists and the parameters match its schema.
func ValidatePolicyConfig(engine *policies.Engine, pc *v1alpha1.PolicyConfig) error {
	p, ok := engine.Lookup(pc.Spec.Policy)
	if !ok {
		return fmt.Errorf("spec.policy: unknown policy %q (see `attest policy list`)", pc.Spec.Policy)
	}
	var params map[string]any
	if pc.Spec.Parameters == nil || json.Unmarshal(pc.Spec.Parameters.Raw, &params) != nil {
		return errors.New("spec.parameters: must be an object")
	}
	if err := p.ValidateParams(params); err != nil {
		var pe *policies.ParamsError
		if errors.As(err, &pe) {
			return errors.New(pe.Prefixed("spec.parameters"))
		}
		return fmt.Errorf("spec.parameters: %w", err)
	}
	return nil
}
