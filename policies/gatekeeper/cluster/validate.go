package cluster

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/continuums/attest/policies/gatekeeper"
)

// Validates reports whether ATTEST judges objects of group and kind at kubectl apply: ConstraintTemplates and
// constraints (the admission package's ResourceValidator).
func (c *Controller) Validates(group, kind string) bool {
	return (group == gatekeeper.TemplateGroup && kind == "ConstraintTemplate") || group == gatekeeper.ConstraintGroup
}

// Validate refuses a ConstraintTemplate whose Rego or CEL does not compile or whose schema is not one (with the
// compiler's message, which names the line), and a constraint its template refuses (parameters against the
// schema, match, enforcementAction). A constraint of a kind ATTEST does not know (its template is not loaded)
// is no business of ATTEST's and is admitted. Problems are "field: message".
func (c *Controller) Validate(ctx context.Context, obj, _ map[string]any) []string {
	return Validate(ctx, c.current(), obj)
}

func (c *Controller) current() *gatekeeper.Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set
}

// Validate is Controller.Validate against a given set (nil: templates only).
func Validate(ctx context.Context, set *gatekeeper.Set, obj map[string]any) []string {
	u := &unstructured.Unstructured{Object: obj}
	if u.GroupVersionKind().Group == gatekeeper.TemplateGroup {
		t, err := gatekeeper.TemplateFrom(u)
		if err != nil {
			return []string{"spec: " + err.Error()}
		}
		if err := gatekeeper.ValidateTemplate(ctx, t); err != nil {
			return []string{fmt.Sprintf("spec.targets: %v", err)}
		}
		return nil
	}
	k, err := gatekeeper.ConstraintFrom(u)
	if err != nil {
		return []string{"apiVersion: " + err.Error()}
	}
	if set == nil || !set.IsConstraintKind(k.Kind()) {
		return nil
	}
	if err := set.ValidateConstraint(k); err != nil {
		return []string{"spec: " + err.Error()}
	}
	return nil
}
