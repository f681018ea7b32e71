// Package config reads policies.yaml (the policy documents' format plus webhook settings) into validated,
// ready-to-evaluate settings, and reloads it when the file changes.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// TrustedRegistriesPolicy and TrustedRegistriesParam name the parameter that feeds the trusted_registry fact.
const (
	TrustedRegistriesPolicy = "trusted-registries"
	TrustedRegistriesParam  = "trusted_registries"
)

// File is the on-disk shape of policies.yaml: ATTEST's own keys and the policy documents' blocks.
type File struct {
	Policies             []PolicyEntry         `json:"policies,omitempty"`
	ProductionNamespaces *ProductionNamespaces `json:"productionNamespaces,omitempty"`
	// Exemptions is, as a mapping, the exemption governance (who may use annotations, the maximum duration,
	// approvers) and, as a list, the policy documents' temporary exemptions.
	Exemptions ExemptionsSection `json:"exemptions,omitempty"`
	// Compliance adds or re-maps framework controls to policies (soc2, gdpr, hipaa, …).
	Compliance ComplianceSection `json:"compliance,omitempty"`
	// Trust is the image trust configuration: which images must carry cosign signatures and attestations, from whom.
	Trust attestation.TrustConfig `json:"trust,omitempty"`
	// Mutation says what the mutating webhook changes (mutation.pinDigests).
	Mutation Mutation `json:"mutation,omitempty"`
	// Policy is the policy documents' global settings block (enabled, fail_on_violation, custom_policies, …).
	Policy *GlobalSettings `json:"policy,omitempty"`
	// Governance is the policy documents' governance block (exemption_approval, emergency_override, …).
	Governance *GovernanceSettings `json:"governance,omitempty"`
	// Cedar names directories of .cedar policy sets (see config/cedar.go).
	Cedar *CedarSection `json:"cedar,omitempty"`
	// PolicySources are signed policy bundles in OCI registries that `attest serve` loads (see config/sources.go).
	PolicySources []PolicySourceConfig `json:"policySources,omitempty"`
}

// PolicyEntry configures one policy, as in the policy documents.
type PolicyEntry struct {
	Name    string `json:"name"`
	Enabled *bool  `json:"enabled,omitempty"`
	// Enforcement is the documents' word: strict (enforce) or warn (audit).
	Enforcement string `json:"enforcement,omitempty"`
	// Mode is enforce, audit or off; set it or Enforcement, not both.
	Mode       ModeValue      `json:"mode,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Rollout    `json:",inline"`
}

// ProductionNamespaces defines once what a production namespace is; either part may be empty.
type ProductionNamespaces struct {
	Names    []string              `json:"names,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Config is a loaded, validated configuration: settings for every policy of the engine it was checked against.
type Config struct {
	// Policies holds the settings of every policy the engine knows, configured or not.
	Policies   map[string]policies.Settings
	Production Production
	// TrustedRegistries is the trusted-registries policy's trusted_registries parameter, parsed once: it
	// establishes the trusted_registry fact of every image.
	TrustedRegistries *attestation.TrustedRegistries
	// Governance decides which exemptions count.
	Governance *exemptions.Governance
	// Engine, when set, replaces the built-in engine: the library plus custom Policy Rego from the cluster.
	Engine *policies.Engine
	// Resources reports what ATTEST made of each Policy and PolicyConfig (kind/name → status).
	Resources map[string]ResourceStatus
	// Compliance is the config's compliance section, validated.
	Compliance map[string]ComplianceFramework
	// Trust holds the trust policies with their keys and roots loaded; nil without a trust section (no policy
	// covers any image, and trust.noMatch is deny).
	Trust *attestation.TrustPolicies
	// Mutation is the validated mutation section (pinDigests defaults to pods).
	Mutation Mutation
	// Digest identifies the file content, for logs and metrics.
	Digest string
	// Files are the files the configuration was read from, in the order given (later ones override earlier ones);
	// none for Parse and Default.
	Files []string
	// PolicySources are the policySources section's sources and policy.policy_bundle_url's, validated.
	PolicySources []PolicySource
	// Warnings name what the configuration asks for and ATTEST does not do (yet): each is said once, at load.
	Warnings []string

	// trustNames are the trust section's policy names, which a policy source's trustPolicy must be one of.
	trustNames map[string]bool
	// bundled are policy.policy_bundle_path's policies, kept when custom Policy Rego recompiles the engine.
	bundled []*policies.Policy
	// custom are the custom_policies' sources, compiled with the library and with any custom Policy resource.
	custom []policies.Source
	// cedar are the policies of the cedar directories; cedarOptions how their entities are built.
	cedar        []*policies.Policy
	cedarOptions cedar.Options
	cedarDirs    []string
	// allOff (policy.enabled false) turns every policy off, enginesOff the policies of an engine ("opa" for
	// policy.opa_enabled false, "gatekeeper" for policy.gatekeeper_enabled false); auditOnly
	// (policy.fail_on_violation false) turns every enforced one to audit. Overlay applies them again over the
	// cluster's resources.
	allOff, auditOnly bool
	enginesOff        map[string]bool
}

// Production decides whether a namespace is a production namespace.
type Production struct {
	names    map[string]bool
	selector labels.Selector
}

// Matches reports whether the namespace is named in config or its labels match the selector.
func (p Production) Matches(name string, nsLabels map[string]string) bool {
	if p.names[name] {
		return true
	}
	return p.selector != nil && !p.selector.Empty() && nsLabels != nil && p.selector.Matches(labels.Set(nsLabels))
}

// DefaultProductionNamespaces applies when the file says nothing: the namespace "production" and any namespace
// labelled environment=production.
func DefaultProductionNamespaces() ProductionNamespaces {
	return ProductionNamespaces{
		Names:    []string{"production"},
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"environment": "production"}},
	}
}

// Load reads and validates the file at path against the engine's catalogue.
func Load(path string, engine *policies.Engine) (*Config, error) {
	cfg, _, err := load(path, engine)
	return cfg, err
}

// load reads and parses the file, returning its bytes too (the watcher compares them on reload).
func load(path string, engine *policies.Engine) (*Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := parseFile(path, data, engine)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, data, nil
}

// Default is the configuration with no file: every policy as its METADATA ships it.
func Default(engine *policies.Engine) *Config {
	cfg, err := Parse(nil, engine)
	if err != nil {
		panic(fmt.Sprintf("the empty configuration does not validate: %v", err)) // a bug, not an input error
	}
	return cfg
}

// parse is Parse with relative file names of the trust section resolving against baseDir.
func parse(data []byte, engine *policies.Engine, baseDir string) (*Config, error) {
	return parseWith(data, engine, Options{Dir: baseDir})
}

// parseWith decodes one file's content and builds its configuration.
func parseWith(data []byte, engine *policies.Engine, o Options) (*Config, error) {
	f, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return build(f, engine, o.defaults(), hex.EncodeToString(sum[:8]), nil)
}

// build validates a decoded (possibly merged) file against the engine's catalogue and makes its configuration.
// Errors and warnings name the field as written; with origins (several files), also the file it was written in.
func build(f File, engine *policies.Engine, o Options, digest string, orgs *origins) (cfg *Config, err error) {
	defer func() {
		if err != nil && orgs != nil {
			err = orgs.attribute(err)
		}
		if cfg != nil && orgs != nil {
			for i, w := range cfg.Warnings {
				cfg.Warnings[i] = orgs.attribute(errors.New(w)).Error()
			}
		}
	}()
	cfg = &Config{Policies: map[string]policies.Settings{}, Digest: digest, Engine: engine}
	if f.Policy != nil && len(f.Policy.CustomPolicies) > 0 {
		if err := cfg.compileCustom(o, f.Policy.CustomPolicies); err != nil {
			return nil, err
		}
		engine = cfg.Engine
	}
	if f.Cedar != nil {
		if engine, err = cfg.loadCedar(f.Cedar, o.Dir, engine); err != nil {
			return nil, err
		}
		cfg.Engine = engine
	}
	if f.Policy != nil && f.Policy.PolicyBundlePath != "" {
		if engine, err = cfg.loadBundlePath(o, f.Policy.PolicyBundlePath, engine); err != nil {
			return nil, err
		}
		cfg.Engine = engine
	}
	if err := cfg.buildPolicySources(f); err != nil {
		return nil, err
	}
	for _, p := range engine.Policies() {
		cfg.Policies[p.Name] = p.DefaultSettings()
	}
	seen := map[string]int{}
	for i, e := range f.Policies {
		field := fmt.Sprintf("policies[%d]", i)
		if e.Name == "" {
			return nil, fmt.Errorf("%s.name: required", field)
		}
		p, ok := engine.Lookup(e.Name)
		if !ok {
			return nil, fmt.Errorf("%s.name: unknown policy %q (see `attest policy list`)", field, e.Name)
		}
		if prev, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("%s.name: policy %q is already configured at policies[%d]", field, e.Name, prev)
		}
		seen[e.Name] = i
		mode, err := entryMode(e, p.DefaultMode)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", field, err)
		}
		s, err := p.NewSettings(mode, e.Parameters)
		if err != nil {
			var pe *policies.ParamsError
			if errors.As(err, &pe) {
				return nil, errors.New(pe.Prefixed(field + ".parameters"))
			}
			return nil, fmt.Errorf("%s.parameters: %w", field, err)
		}
		if err := applyRollout(p, &s, e.Rollout, field); err != nil {
			return nil, err
		}
		cfg.Policies[e.Name] = s
	}
	if err := cfg.buildTrustedRegistries(f); err != nil {
		return nil, err
	}
	gov, err := governanceConfig(f, &cfg.Warnings)
	if err != nil {
		return nil, err
	}
	if cfg.Governance, err = exemptions.NewGovernance(gov); err != nil {
		return nil, err
	}
	if err := validateCompliance(f.Compliance, engine); err != nil {
		return nil, err
	}
	cfg.Compliance = f.Compliance
	cfg.applyCompliance(engine, f, seen)
	for i, n := range f.Exemptions.NonExemptable {
		if _, ok := engine.Lookup(n.Policy); !ok {
			return nil, fmt.Errorf("exemptions.nonExemptable[%d].policy: unknown policy %q (see `attest policy list`)", i, n.Policy)
		}
	}
	if len(f.Exemptions.List) > 0 {
		if gov.Listed, err = cfg.listedExemptions(f.Exemptions.List, engine, o.Now()); err != nil {
			return nil, err
		}
		if cfg.Governance, err = exemptions.NewGovernance(gov); err != nil {
			return nil, err
		}
	}
	if err := cfg.buildTrust(f, o.Dir); err != nil {
		return nil, err
	}
	cfg.applyFirstRun(f)
	prod := DefaultProductionNamespaces()
	if f.ProductionNamespaces != nil {
		prod = *f.ProductionNamespaces
	}
	cfg.Production.names = map[string]bool{}
	for _, n := range prod.Names {
		cfg.Production.names[n] = true
	}
	if prod.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(prod.Selector)
		if err != nil {
			return nil, fmt.Errorf("productionNamespaces.selector: %w", err)
		}
		cfg.Production.selector = sel
	}
	cfg.applyGlobal(f.Policy, engine)
	return cfg, nil
}

// entryMode resolves enabled / enforcement / mode into one mode; the error starts with the field name.
func entryMode(e PolicyEntry, def policies.Mode) (policies.Mode, error) {
	if e.Enforcement != "" && e.Mode != "" {
		return "", fmt.Errorf("mode: set either mode or enforcement, not both")
	}
	mode := def
	switch {
	case e.Mode != "":
		m, err := policies.ParseMode(string(e.Mode))
		if err != nil {
			return "", fmt.Errorf("mode: %w", err)
		}
		mode = m
	case e.Enforcement != "":
		switch e.Enforcement {
		case "strict":
			mode = policies.ModeEnforce
		case "warn":
			mode = policies.ModeAudit
		default:
			return "", fmt.Errorf("enforcement: unknown value %q (want strict or warn)", e.Enforcement)
		}
	}
	if e.Enabled != nil && !*e.Enabled {
		mode = policies.ModeOff
	}
	return mode, nil
}

// buildTrustedRegistries parses the trusted-registries entries; a bad entry names its field.
func (cfg *Config) buildTrustedRegistries(f File) error {
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
		field := "policies"
		for i, e := range f.Policies {
			if e.Name == TrustedRegistriesPolicy {
				field = fmt.Sprintf("policies[%d]", i)
			}
		}
		return fmt.Errorf("%s.parameters.%s%w", field, TrustedRegistriesParam, err)
	}
	cfg.TrustedRegistries = tr
	return nil
}

// decodeFile reads YAML strictly: unknown and duplicate fields are errors naming their path, as in
// `unknown field "policies[0].enforcment"`.
func decodeFile(data []byte) (File, error) {
	var f File
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return f, err
	}
	strict, err := kjson.UnmarshalStrict(js, &f, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		var fe fieldErrors
		if errors.As(err, &fe) {
			return f, fe // a section that decodes itself names its field
		}
		return f, fmt.Errorf("config is not valid: %w", err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return f, errors.New(strings.Join(msgs, "; "))
	}
	return f, nil
}

// ModeValue is a mode as written in YAML 1.1, which reads an unquoted `off` as the boolean false.
type ModeValue string

// UnmarshalJSON accepts a string, or false for off.
func (m *ModeValue) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "false":
		*m = ModeValue(policies.ModeOff)
		return nil
	case "true":
		return fmt.Errorf("mode: true is not a mode (YAML reads an unquoted on or yes as true): want enforce, audit or off")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("mode: want enforce, audit or off, got %s", b)
	}
	*m = ModeValue(s)
	return nil
}
