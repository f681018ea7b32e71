package main

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
)

// cedarForK8sGroupVersion is Cedar for Kubernetes' Policy resource (spec.content, spec.validation.enforced).
const cedarForK8sGroupVersion = "cedar.k8s.aws/v1alpha1"

// isCedarInput reports whether a manifest object is a Cedar policy for `attest policy check` to apply rather
// than an object to check: an ATTEST Policy with spec.cedar, or a Cedar for Kubernetes Policy.
func isCedarInput(obj map[string]any) bool {
	if obj["kind"] != "Policy" {
		return false
	}
	if obj["apiVersion"] == cedarForK8sGroupVersion {
		return true
	}
	spec, _ := obj["spec"].(map[string]any)
	_, hasCedar := spec["cedar"]
	return obj["apiVersion"] == v1alpha1.GroupVersion.String() && hasCedar
}

// withCedarInputs adds the Cedar policies among the inputs to the configuration: ATTEST Policies with
// spec.cedar as the cluster would load them (mode, match and rollout of their spec), Cedar for Kubernetes
// Policies as policies of their name in enforce mode (validated against the schema when their
// spec.validation.enforced is true, as that project does). An invalid one is an input error naming its file and line.
func withCedarInputs(ctx context.Context, cfg *config.Config, engine *policies.Engine, sources []manifest.Source) (*config.Config, *policies.Engine, int, error) {
	var attestPols []v1alpha1.Policy
	var where []string
	var foreign []*policies.Policy
	for _, src := range sources {
		for doc, err := range manifest.Documents(src) {
			if err != nil || !doc.MayHold("Policy") {
				continue
			}
			objs, err := doc.Objects()
			if err != nil {
				continue // the check reports it
			}
			for _, obj := range objs {
				if !isCedarInput(obj.Object) {
					continue
				}
				at := fmt.Sprintf("%s:%d", obj.File, obj.Line)
				if obj.Object["apiVersion"] == cedarForK8sGroupVersion {
					p, err := cedarForK8sPolicy(obj.Object)
					if err != nil {
						return nil, nil, 0, fmt.Errorf("%s: %w", at, err)
					}
					foreign = append(foreign, p)
					continue
				}
				var pol v1alpha1.Policy
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pol); err != nil {
					return nil, nil, 0, fmt.Errorf("%s: Policy: cannot read it: %w", at, err)
				}
				attestPols = append(attestPols, pol)
				where = append(where, at)
			}
		}
	}
	n := len(attestPols) + len(foreign)
	if n == 0 {
		return cfg, engine, 0, nil
	}
	base := *cfg
	base.Engine = engine
	out := &base
	if len(attestPols) > 0 {
		out = config.Overlay(ctx, nil, &base, nil, config.Resources{Policies: attestPols})
		for i, pol := range attestPols {
			if st := out.Resources["Policy/"+pol.Name]; !st.Valid {
				return nil, nil, 0, fmt.Errorf("%s: Policy %s: %s", where[i], pol.Name, strings.TrimSuffix(st.Message, "; the last good version keeps running"))
			}
		}
	}
	if len(foreign) > 0 {
		e, err := out.Engine.With(foreign...)
		if err != nil {
			return nil, nil, 0, err
		}
		c := *out
		c.Engine = e
		c.Policies = maps.Clone(out.Policies)
		for _, p := range foreign {
			c.Policies[p.Name] = p.DefaultSettings()
		}
		out = &c
	}
	return out, out.Engine, n, nil
}

// cedarForK8sPolicy reads a cedar.k8s.aws/v1alpha1 Policy into a pipeline policy named after it.
func cedarForK8sPolicy(obj map[string]any) (*policies.Policy, error) {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	spec, _ := obj["spec"].(map[string]any)
	content, _ := spec["content"].(string)
	if name == "" || strings.TrimSpace(content) == "" {
		return nil, fmt.Errorf("%s Policy %q: metadata.name and spec.content are required", cedarForK8sGroupVersion, name)
	}
	validation, _ := spec["validation"].(map[string]any)
	enforced, _ := validation["enforced"].(bool)
	file := "Policy/" + name
	set, err := cedar.Parse(cedar.Source{Name: file, Text: content})
	if err != nil {
		return nil, fmt.Errorf("%s Policy %s: spec.content: %w", cedarForK8sGroupVersion, name, err)
	}
	if enforced {
		if err := set.Validate(); err != nil {
			return nil, fmt.Errorf("%s Policy %s: spec.content: %w", cedarForK8sGroupVersion, name, err)
		}
	}
	return cedar.NewPolicy(name, file, set, content, cedar.Options{})
}
