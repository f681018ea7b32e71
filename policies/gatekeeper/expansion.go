package gatekeeper

import (
	"errors"
	"fmt"

	expansionunversioned "github.com/open-policy-agent/gatekeeper/v3/apis/expansion/unversioned"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/expansion"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "sigs.k8s.io/json"
)

// ExpansionGroup is the group of Gatekeeper's ExpansionTemplates.
const ExpansionGroup = "expansion.gatekeeper.sh"

// ErrNotExpansionTemplate: the document is not an ExpansionTemplate.
var ErrNotExpansionTemplate = errors.New("not an ExpansionTemplate")

// An ExpansionTemplate (expansion.gatekeeper.sh v1alpha1 or v1beta1) says which generated objects a workload
// stands for: for a Deployment, the Pod of spec.template.
type ExpansionTemplate struct {
	et *expansionunversioned.ExpansionTemplate
}

// Name is metadata.name.
func (e *ExpansionTemplate) Name() string { return e.et.GetName() }

// ExpansionTemplateFrom reads an ExpansionTemplate object strictly: an unknown or mistyped field is an error
// naming it, and so is what Gatekeeper refuses (no source, no generatedGVK, no applyTo, a template that applies
// to what it generates, an unknown enforcementAction).
func ExpansionTemplateFrom(u *unstructured.Unstructured) (*ExpansionTemplate, error) {
	gvk := u.GroupVersionKind()
	if gvk.Group != ExpansionGroup || gvk.Kind != "ExpansionTemplate" || (gvk.Version != "v1alpha1" && gvk.Version != "v1beta1") {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q", ErrNotExpansionTemplate, u.GetAPIVersion(), u.GetKind())
	}
	j, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("ExpansionTemplate %s: %w", u.GetName(), err)
	}
	et := &expansionunversioned.ExpansionTemplate{}
	strict, err := kjson.UnmarshalStrict(j, et, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("ExpansionTemplate %s: %w", u.GetName(), err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("ExpansionTemplate %s: %w", u.GetName(), errors.Join(strict...))
	}
	switch util.EnforcementAction(et.Spec.EnforcementAction) {
	case "", util.Deny, util.Dryrun, util.Warn:
	default:
		return nil, fmt.Errorf("ExpansionTemplate %s: spec.enforcementAction %q: want deny, dryrun, warn or none (the constraint's)", u.GetName(), et.Spec.EnforcementAction)
	}
	if err := expansion.ValidateTemplate(et); err != nil {
		return nil, fmt.Errorf("ExpansionTemplate %s: %w", u.GetName(), err)
	}
	return &ExpansionTemplate{et: et}, nil
}
