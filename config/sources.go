package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// Policy source defaults and bounds: a registry is asked at most every MinSourceInterval.
const (
	DefaultSourceInterval = 5 * time.Minute
	MinSourceInterval     = 10 * time.Second
	// BundleURLSource names the policy source that policy.policy_bundle_url maps to.
	BundleURLSource = "policy-bundle-url"
)

// PolicySourceConfig is one entry of the policySources section: a signed policy bundle in an OCI registry that
// `attest serve` pulls, verifies, checks and loads, and pulls again every interval.
//
//	policySources:
//	  - name: acme
//	    oci: registry.company.com/policies/acme:prod   # tag or digest
//	    interval: 5m
//	    trustPolicy: policy-bundles                    # a trust policy of the trust section; required
//	    pullSecret: {namespace: attest-system, name: regcred}
type PolicySourceConfig struct {
	Name        string         `json:"name"`
	OCI         string         `json:"oci"`
	Interval    string         `json:"interval,omitempty"`
	TrustPolicy string         `json:"trustPolicy"`
	PullSecret  *PullSecretRef `json:"pullSecret,omitempty"`
}

// PullSecretRef names a kubernetes.io/dockerconfigjson Secret with the registry's credentials.
type PullSecretRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// PolicySource is a validated policy source.
type PolicySource struct {
	Name string
	// OCI is the bundle artifact's reference, as written.
	OCI      string
	Interval time.Duration
	// TrustPolicy must cover OCI; empty (policy.policy_bundle_url only) takes whichever trust policy covers it:
	// either way, an artifact no trust policy covers, or without a signature of its authorities, never loads.
	TrustPolicy string
	PullSecret  *PullSecretRef
	// Cluster is set for a PolicySource resource (its status is written), unset for the file's sources.
	Cluster bool
}

// buildPolicySources validates the policySources section and maps policy.policy_bundle_url to a source.
func (cfg *Config) buildPolicySources(f File) error {
	trustNames := map[string]bool{}
	for _, p := range f.Trust.Policies {
		trustNames[p.Name] = true
	}
	cfg.trustNames = trustNames
	seen := map[string]int{}
	for i, s := range f.PolicySources {
		field := fmt.Sprintf("policySources[%d]", i)
		src, err := policySource(s, trustNames)
		if err != nil {
			return fmt.Errorf("%s.%w", field, err)
		}
		if prev, dup := seen[src.Name]; dup {
			return fmt.Errorf("%s.name: %q is already the name of policySources[%d]", field, src.Name, prev)
		}
		seen[src.Name] = i
		cfg.PolicySources = append(cfg.PolicySources, src)
	}
	if f.Policy == nil || f.Policy.PolicyBundleURL == "" {
		return nil
	}
	u := f.Policy.PolicyBundleURL
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return fmt.Errorf("policy.policy_bundle_url: %s: bundles are pulled from OCI registries (push it with `attest policy bundle push DIR REF`, sign it with `cosign sign`, and name REF here); plain HTTP(S) bundles are not supported", u)
	}
	if _, dup := seen[BundleURLSource]; dup {
		return fmt.Errorf("policy.policy_bundle_url: the policy source name %q is taken by a policySources entry", BundleURLSource)
	}
	if _, err := name.ParseReference(u); err != nil {
		return fmt.Errorf("policy.policy_bundle_url: %q is not a registry reference: %w", u, err)
	}
	cfg.PolicySources = append(cfg.PolicySources, PolicySource{Name: BundleURLSource, OCI: u, Interval: DefaultSourceInterval})
	return nil
}

func policySource(s PolicySourceConfig, trustNames map[string]bool) (PolicySource, error) {
	src := PolicySource{Name: s.Name, OCI: s.OCI, TrustPolicy: s.TrustPolicy, PullSecret: s.PullSecret, Interval: DefaultSourceInterval}
	switch {
	case s.Name == "":
		return src, fmt.Errorf("name: required")
	case !policies.IsLabel(s.Name):
		return src, fmt.Errorf("name: %q is not a source name (lower-case letters, digits and '-', at most 63 characters)", s.Name)
	case s.OCI == "":
		return src, fmt.Errorf("oci: required (the bundle's registry reference, tag or digest)")
	case s.TrustPolicy == "":
		return src, fmt.Errorf("trustPolicy: required: name the trust policy whose authorities must have signed the bundle (an unsigned bundle never loads)")
	case !trustNames[s.TrustPolicy]:
		return src, fmt.Errorf("trustPolicy: %q is not a policy of the trust section", s.TrustPolicy)
	}
	if _, err := name.ParseReference(s.OCI); err != nil {
		return src, fmt.Errorf("oci: %q is not a registry reference: %w", s.OCI, err)
	}
	if s.Interval != "" {
		d, err := time.ParseDuration(s.Interval)
		if err != nil {
			return src, fmt.Errorf("interval: %w", err)
		}
		if d < MinSourceInterval {
			return src, fmt.Errorf("interval: %s is shorter than the minimum %s", d, MinSourceInterval)
		}
		src.Interval = d
	}
	if p := s.PullSecret; p != nil && (p.Namespace == "" || p.Name == "") {
		return src, fmt.Errorf("pullSecret: namespace and name are required")
	}
	return src, nil
}

// loadBundlePath adds the policies of policy.policy_bundle_path (a bundle directory or .tar.gz file, relative to
// the config file's directory) to engine. The file is trusted as the config file that names it is: a bundle from
// a registry goes through policySources, which verifies its signature.
func (cfg *Config) loadBundlePath(o Options, p string, engine *policies.Engine) (*policies.Engine, error) {
	const field = "policy.policy_bundle_path"
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		p = filepath.Join(home, rest)
	} else if !filepath.IsAbs(p) && o.Dir != "" {
		p = filepath.Join(o.Dir, p)
	}
	b, err := bundles.Open(p, bundles.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	lib := o.Library
	if lib == nil {
		if lib, _, err = policies.Library(); err != nil {
			return nil, fmt.Errorf("%s: read the policy library: %w", field, err)
		}
	}
	archive, err := b.Archive()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	c, err := b.Check(context.Background(), append(append([]policies.Source(nil), lib...), cfg.custom...), "bundle@"+bundles.Digest(archive))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, p, err)
	}
	ps, err := withCedarOptions(c.Policies, cfg.cedarOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, p, err)
	}
	e, err := engine.With(ps...)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, p, err)
	}
	cfg.bundled = ps
	return e, nil
}

// withCedarOptions gives a bundle's Cedar policy sets, checked before the configuration was known, the
// configuration's entity options (cedar.mfa); its other policies are returned as they are.
func withCedarOptions(ps []*policies.Policy, o cedar.Options) ([]*policies.Policy, error) {
	out := make([]*policies.Policy, len(ps))
	for i, p := range ps {
		q, err := cedar.WithOptions(p, o)
		if err != nil {
			return nil, err
		}
		out[i] = q
	}
	return out, nil
}

// LoadedBundle is a verified and checked bundle of a policy source, ready to join the engine.
type LoadedBundle = bundles.Loaded

// bundleEngine adds each source's bundle policies (Rego, Cedar policy sets, Gatekeeper constraints) to engine. A
// bundle whose policy names clash with the engine's (a custom Policy, Cedar or Gatekeeper policy, another bundle)
// is refused whole and reported on "PolicySource/<name>"; the others load. Bundles join in source-name order, so
// a clash is always the later's. Cedar sets get the configuration's entity options (cedar.mfa).
func bundleEngine(engine *policies.Engine, loaded []LoadedBundle, out *Config) *policies.Engine {
	loaded = append([]LoadedBundle(nil), loaded...)
	sort.Slice(loaded, func(i, j int) bool { return loaded[i].Source < loaded[j].Source })
	for _, b := range loaded {
		key := "PolicySource/" + b.Source
		ps, err := withCedarOptions(b.Policies, out.cedarOptions)
		if err != nil {
			out.Resources[key] = ResourceStatus{Message: fmt.Sprintf("bundle %s not loaded: %v", b.Digest, err)}
			continue
		}
		e, err := engine.With(ps...)
		if err != nil {
			out.Resources[key] = ResourceStatus{Message: fmt.Sprintf("bundle %s not loaded: %v", b.Digest, err)}
			continue
		}
		engine = e
		for _, p := range ps {
			out.Policies[p.Name] = p.DefaultSettings()
		}
		out.Resources[key] = ResourceStatus{Valid: true}
	}
	return engine
}

// clusterSources adds the PolicySource resources to out's sources. An invalid one, or one named like a source of
// the file, is reported on "PolicySource/<name>" and not synced.
func clusterSources(out *Config, list []v1alpha1.PolicySource) {
	if len(list) == 0 {
		return
	}
	out.PolicySources = append([]PolicySource(nil), out.PolicySources...)
	fromFile := map[string]bool{}
	for _, s := range out.PolicySources {
		fromFile[s.Name] = true
	}
	for _, ps := range list {
		key := "PolicySource/" + ps.Name
		if fromFile[ps.Name] {
			out.Resources[key] = ResourceStatus{Message: fmt.Sprintf("the config file's policySources has a source named %q; rename one", ps.Name), Generation: ps.Generation}
			continue
		}
		c := PolicySourceConfig{Name: ps.Name, OCI: ps.Spec.OCI, TrustPolicy: ps.Spec.TrustPolicy}
		if ps.Spec.Interval != nil {
			c.Interval = ps.Spec.Interval.Duration.String()
		}
		if p := ps.Spec.PullSecret; p != nil {
			c.PullSecret = &PullSecretRef{Namespace: p.Namespace, Name: p.Name}
		}
		src, err := policySource(c, out.trustNames)
		if err != nil {
			out.Resources[key] = ResourceStatus{Message: "spec." + err.Error(), Generation: ps.Generation}
			continue
		}
		src.Cluster = true
		out.PolicySources = append(out.PolicySources, src)
	}
}
