package gatekeeper

import (
	"errors"
	"fmt"

	expansionunversioned "github.com/open-policy-agent/gatekeeper/v3/apis/expansion/unversioned"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/expansion"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
		return nil, err // Gatekeeper's messages name the template
	}
	return &ExpansionTemplate{et: et}, nil
}

// An Expander holds ExpansionTemplates: Client.ReviewExpanded reviews an object with what they generate from it.
type Expander struct {
	sys       *expansion.System
	templates []*expansionunversioned.ExpansionTemplate
}

// NewExpander returns an Expander without templates (it expands nothing).
func NewExpander() *Expander { return &Expander{sys: expansion.NewSystem(nil)} }

// Add adds an ExpansionTemplate; templates that conflict (generate the same kind from the same kind) are an
// error, as in Gatekeeper.
func (e *Expander) Add(t *ExpansionTemplate) error {
	if err := e.sys.UpsertTemplate(t.et); err != nil {
		return fmt.Errorf("ExpansionTemplate %s: %w", t.Name(), err)
	}
	e.templates = append(e.templates, t.et)
	return nil
}

// appliesTo tells whether a template added applies to the kind.
func (e *Expander) appliesTo(gvk schema.GroupVersionKind) bool {
	for _, t := range e.templates {
		for _, a := range t.Spec.ApplyTo {
			if a.Matches(gvk) {
				return true
			}
		}
	}
	return false
}

// expansionObject is an ExpansionTemplate object, as a user would write it.
func expansionObject(name string, applyTo schema.GroupVersionKind, source string, generated schema.GroupVersionKind) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ExpansionGroup + "/v1beta1",
		"kind":       "ExpansionTemplate",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"applyTo": []any{map[string]any{
				"groups": []any{applyTo.Group}, "versions": []any{applyTo.Version}, "kinds": []any{applyTo.Kind},
			}},
			"templateSource": source,
			"generatedGVK":   map[string]any{"group": generated.Group, "version": generated.Version, "kind": generated.Kind},
		},
	}}
}

// empty tells whether no template was added.
func (e *Expander) empty() bool { return e == nil || len(e.templates) == 0 }
