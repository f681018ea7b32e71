package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// CedarSection is the config's `cedar` key: directories of .cedar policy sets, and where context.mfa comes from.
type CedarSection struct {
	// Directories hold .cedar files (relative to the config file); each file is one policy set, named after the
	// file (production.cedar is the policy "production"), configured under policies: like any other policy.
	Directories []string `json:"directories,omitempty"`
	// MFA says which userInfo.extra key and value mean the user authenticated with MFA (default amr, mfa).
	MFA CedarMFA `json:"mfa,omitempty"`
}

// CedarMFA is cedar.mfa.
type CedarMFA struct {
	ExtraKey string `json:"extraKey,omitempty"`
	Value    string `json:"value,omitempty"`
}

// CedarOptions are the entity options of the configuration's Cedar policies.
func (cfg *Config) CedarOptions() cedar.Options { return cfg.cedarOptions }

// loadCedar reads the configured directories' .cedar files into policies added to the engine. Every file must
// parse and validate against the schema: the error names the file and line.
func (cfg *Config) loadCedar(sec *CedarSection, dir string, engine *policies.Engine) (*policies.Engine, error) {
	if sec == nil {
		return engine, nil
	}
	cfg.cedarOptions = cedar.Options{MFAKey: sec.MFA.ExtraKey, MFAValue: sec.MFA.Value}
	cfg.cedarDirs = nil
	var ps []*policies.Policy
	for i, d := range sec.Directories {
		field := fmt.Sprintf("cedar.directories[%d]", i)
		if strings.TrimSpace(d) == "" {
			return nil, fmt.Errorf("%s: empty", field)
		}
		if !filepath.IsAbs(d) && dir != "" {
			d = filepath.Join(dir, d)
		}
		cfg.cedarDirs = append(cfg.cedarDirs, d)
		files, err := filepath.Glob(filepath.Join(d, "*.cedar"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		sort.Strings(files)
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".cedar")
			if !policies.IsLabel(name) {
				return nil, fmt.Errorf("%s: %s: %q is not a policy name (lower-case letters, digits and '-'): rename the file", field, f, name)
			}
			p, err := CedarPolicy(name, f, string(text), cfg.cedarOptions)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			ps = append(ps, p)
		}
	}
	cfg.cedar = ps
	e, err := engine.With(ps...)
	if err != nil {
		return nil, fmt.Errorf("cedar.directories: %w", err)
	}
	return e, nil
}

// CedarPolicy parses and validates one Cedar policy set and makes it the pipeline policy name.
func CedarPolicy(name, file, text string, o cedar.Options) (*policies.Policy, error) {
	set, err := cedar.Parse(cedar.Source{Name: file, Text: text})
	if err != nil {
		return nil, err
	}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	return cedar.NewPolicy(name, file, set, text, o)
}

// CheckCedar checks a Policy's spec.cedar as the validating webhook admits it.
func CheckCedar(pol *v1alpha1.Policy) error {
	if strings.TrimSpace(pol.Spec.Rego) != "" {
		return errors.New("spec.cedar: a Policy defines spec.rego or spec.cedar, not both")
	}
	if _, err := CedarPolicy(pol.Name, "Policy/"+pol.Name, pol.Spec.Cedar, cedar.Options{}); err != nil {
		return fmt.Errorf("spec.cedar: %w", err)
	}
	return nil
}

// cedarEngine adds the Cedar policies to engine: the config's files (lost when custom Rego recompiled the
// engine) and every Policy with spec.cedar. An invalid spec.cedar is reported in the Policy's status and the
// last good set of that name (from prev) keeps running.
func cedarEngine(engine *policies.Engine, r Resources, prev, out *Config) *policies.Engine {
	var add []*policies.Policy
	for _, p := range out.cedar {
		if _, ok := engine.Lookup(p.Name); !ok {
			add = append(add, p)
		}
	}
	for _, pol := range r.Policies {
		if strings.TrimSpace(pol.Spec.Cedar) == "" {
			continue
		}
		key := "Policy/" + pol.Name
		if _, taken := engine.Lookup(pol.Name); taken {
			out.Resources[key] = ResourceStatus{Message: fmt.Sprintf("metadata.name: %q is already a policy (library, custom Rego or a .cedar file); give the Cedar policy a name of its own", pol.Name), Generation: pol.Generation}
			continue
		}
		if err := CheckCedar(&pol); err != nil {
			out.Resources[key] = ResourceStatus{Message: err.Error() + "; the last good version keeps running", Generation: pol.Generation}
			if prev != nil && prev.Engine != nil {
				if p, ok := prev.Engine.Lookup(pol.Name); ok {
					if _, isCedar := p.Evaluator().(*cedar.Evaluator); isCedar {
						add = append(add, p)
					}
				}
			}
			continue
		}
		p, err := CedarPolicy(pol.Name, "Policy/"+pol.Name, pol.Spec.Cedar, out.cedarOptions)
		if err != nil { // CheckCedar passed: cannot happen
			out.Resources[key] = ResourceStatus{Message: "spec.cedar: " + err.Error(), Generation: pol.Generation}
			continue
		}
		add = append(add, p)
	}
	if len(add) == 0 {
		return engine
	}
	e, err := engine.With(add...)
	if err != nil {
		for _, pol := range r.Policies {
			if strings.TrimSpace(pol.Spec.Cedar) != "" {
				out.Resources["Policy/"+pol.Name] = ResourceStatus{Message: err.Error(), Generation: pol.Generation}
			}
		}
		return engine
	}
	for _, p := range add {
		if _, ok := out.Policies[p.Name]; !ok {
			out.Policies[p.Name] = p.DefaultSettings()
		}
	}
	return e
}

// Operations are the admission operations beyond CREATE and UPDATE (DELETE, CONNECT) that the configuration's
// enabled policies judge, sorted: what ATTEST's webhook rules must send it. engine is used when the
// configuration carries none.
func (cfg *Config) Operations(engine *policies.Engine) []string {
	return slices.Sorted(maps.Keys(cfg.OperationKinds(engine)))
}

// OperationKinds are, for each operation of Operations, the kinds the enabled policies judge it for ("apps/
// Deployment", "/Pod"), sorted; nil when one of them judges it for every kind. What the webhook's rules send
// ATTEST is narrowed to them.
func (cfg *Config) OperationKinds(engine *policies.Engine) map[string][]string {
	enabled := cfg.enabledPolicies(engine)
	if enabled == nil {
		return nil
	}
	out := map[string][]string{}
	every := map[string]bool{}
	for _, p := range enabled {
		for _, op := range p.Operations {
			kinds, narrowed := p.OperationKinds[op]
			if !narrowed {
				every[op] = true
				continue
			}
			out[op] = append(out[op], kinds...)
		}
	}
	for op := range every {
		out[op] = nil
	}
	for op, kinds := range out {
		if kinds != nil {
			slices.Sort(kinds)
			out[op] = slices.Compact(kinds)
		}
	}
	return out
}

// WriteKinds are the kinds beyond the webhook's workload kinds whose CREATE and UPDATE the configuration's enabled
// policies judge ("/ConfigMap"), sorted: what ATTEST's webhook rules must send it as well. engine is used when the
// configuration carries none.
func (cfg *Config) WriteKinds(engine *policies.Engine) []string {
	var out []string
	for _, p := range cfg.enabledPolicies(engine) {
		out = append(out, p.WriteKinds...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// enabledPolicies are the policies of the configuration's engine (else engine) whose mode is not off; nil without
// an engine.
func (cfg *Config) enabledPolicies(engine *policies.Engine) []*policies.Policy {
	if cfg.Engine != nil {
		engine = cfg.Engine
	}
	if engine == nil {
		return nil
	}
	out := []*policies.Policy{}
	for _, p := range engine.Policies() {
		if s := cfg.Policies[p.Name]; s.Mode != "" && s.Mode != policies.ModeOff {
			out = append(out, p)
		}
	}
	return out
}

// cedarFingerprint identifies the names and contents of the .cedar files in the configuration's directories now,
// and the Cedar schema's version, so that the watcher reloads when one changes: an edited file, or a CRD that a
// file names arriving after the file failed to load ("" without cedar directories).
func (cfg *Config) cedarFingerprint() string {
	if len(cfg.cedarDirs) == 0 {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "schema %d\x00", cedar.SchemaVersion())
	for _, d := range cfg.cedarDirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.cedar"))
		sort.Strings(files)
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				text = []byte("unreadable: " + err.Error())
			}
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(text))
			h.Write(text)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
