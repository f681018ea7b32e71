package admission

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
)

// isPolicyResource reports whether the request is for a Policy or PolicyConfig.
func isPolicyResource(in Input) bool {
	return in.Request.Group == v1alpha1.GroupVersion.Group && (in.Request.Kind == "Policy" || in.Request.Kind == "PolicyConfig")
}

// validatePolicyResource rejects, at kubectl apply, a Policy or PolicyConfig ATTEST could not use: Rego that
// does not compile or is impure, an unknown policy, parameters that do not match the schema, a bad mode.
func (e *Evaluator) validatePolicyResource(ctx context.Context, in Input, cfg *config.Config) Decision {
	var err error
	switch in.Request.Kind {
	case "Policy":
		pol := &v1alpha1.Policy{}
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(in.Object, pol); err != nil {
			return badRequest(err)
		}
		err = config.ValidatePolicy(ctx, e.library, cfg, e.engine, pol)
	default:
		pc := &v1alpha1.PolicyConfig{}
		if err = runtime.DefaultUnstructuredConverter.FromUnstructured(in.Object, pc); err != nil {
			return badRequest(err)
		}
		err = config.ValidatePolicyConfig(e.engineFor(cfg), pc)
	}
	d := Decision{}
	if err != nil {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok {
			field, msg = "", err.Error()
		}
		d.Violations = []Violation{{Policy: in.Request.Kind, Mode: "enforce", Severity: "high", Path: field, Message: msg, Denied: true}}
	}
	d.finish()
	return d
}

// A ResourceValidator judges the policy resources of another language at kubectl apply (Gatekeeper's
// ConstraintTemplates and Constraints), so that one that could not run is refused with the compiler's message
// rather than accepted and never enforced.
type ResourceValidator interface {
	// Validates reports whether it judges objects of the group and kind.
	Validates(group, kind string) bool
	// Validate returns what is wrong with obj (old is the object before an UPDATE, else nil), each problem
	// "field: message".
	Validate(ctx context.Context, obj, old map[string]any) []string
}

// validateOtherResource refuses a resource of another language that its engine cannot use.
func (e *Evaluator) validateOtherResource(ctx context.Context, in Input) Decision {
	d := Decision{}
	for _, p := range e.resources.Validate(ctx, in.Object, in.OldObject) {
		field, msg, ok := strings.Cut(p, ": ")
		if !ok {
			field, msg = "", p
		}
		d.Violations = append(d.Violations, Violation{Policy: in.Request.Kind, Mode: "enforce", Severity: "high", Path: field, Message: msg, Denied: true})
	}
	d.finish()
	return d
}
