package gatekeeper

// The K8sNativeValidation (CEL) driver. Gatekeeper's own driver
// (github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel, Apache-2.0) does not compile against
// k8s.io/apiserver v0.37, whose VersionedAttributes hold admission.LazyObject values, and this module is pinned
// to k8s v0.37. This file is that driver adapted to v0.37: the same compiler environment, the same variables
// (variables.anyObject, variables.params), the same matchConditions, failurePolicy, messageExpression and the same
// DELETE rule (object is null, oldObject is set). Template sources are read by Gatekeeper's own k8scel/schema
// package. When Gatekeeper moves to k8s v0.37, replace this file by k8scel.New().

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	celschema "github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel/schema"
	"github.com/open-policy-agent/opa/v1/storage"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	celapi "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
)

var _ drivers.Driver = (*celDriver)(nil)

// celDriver evaluates the K8sNativeValidation source of ConstraintTemplates.
type celDriver struct {
	mu         sync.RWMutex
	validators map[string]validating.Validator // by template name
}

func newCELDriver() *celDriver {
	return &celDriver{validators: map[string]validating.Validator{}}
}

// Gatekeeper's variables, bound before the template's own (k8scel/transform.AllVariablesCEL).
func gatekeeperVariables() []cel.NamedExpressionAccessor {
	return []cel.NamedExpressionAccessor{
		&validating.Variable{
			Name:       celschema.ObjectName,
			Expression: `has(request.operation) && request.operation == "DELETE" && object == null ? oldObject : object`,
		},
		&validating.Variable{
			Name:       celschema.ParamsName,
			Expression: "!has(params.spec) ? null : !has(params.spec.parameters) ? null: params.spec.parameters",
		},
	}
}

func (d *celDriver) Name() string { return celschema.Name }

func (d *celDriver) AddTemplate(_ context.Context, ct *templates.ConstraintTemplate) error {
	source, err := celschema.GetSourceFromTemplate(ct)
	if err != nil {
		return err
	}
	vars, err := source.GetVariables()
	if err != nil {
		return err
	}
	compiler, err := cel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		return err
	}
	// Only the driver's own variables see the constraint (params); the template's expressions see variables.params.
	var errs []error
	for _, v := range append(gatekeeperVariables(), vars...) {
		r := compiler.CompileAndStoreVariable(v, cel.OptionalVariableDeclarations{HasParams: true}, environment.StoredExpressions)
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("variable %s: %w", v.GetName(), r.Error))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	decls := cel.OptionalVariableDeclarations{}

	failurePolicy, err := source.GetFailurePolicy()
	if err != nil {
		return err
	}
	matchAccessors, err := source.GetMatchConditions()
	if err != nil {
		return err
	}
	validations, err := source.GetValidations()
	if err != nil {
		return err
	}
	messages, err := source.GetMessageExpressions()
	if err != nil {
		return err
	}
	conditions := compiler.CompileCondition(validations, decls, environment.StoredExpressions)
	if err := compileErrors("validation", conditions); err != nil {
		return err
	}
	matchFilter := compiler.CompileCondition(matchAccessors, decls, environment.StoredExpressions)
	if err := compileErrors("matchCondition", matchFilter); err != nil {
		return err
	}
	messageFilter := compiler.CompileCondition(messages, decls, environment.StoredExpressions)
	if err := compileErrors("messageExpression", messageFilter); err != nil {
		return err
	}
	matcher := matchconditions.NewMatcher(matchFilter, failurePolicy, "validatingadmissionpolicy", "vap-matcher", ct.GetName())
	validator := validating.NewValidator(conditions, matcher,
		compiler.CompileCondition(nil, decls, environment.StoredExpressions), messageFilter, failurePolicy, nil)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.validators[ct.GetName()] = validator
	return nil
}

// compileErrors reports expressions that do not compile. Gatekeeper's driver accepts such a template and
// fails (or, with failurePolicy Ignore, passes) every review; ATTEST refuses the template with the compiler's
// message, as the issue asks for broken templates.
func compileErrors(what string, e cel.ConditionEvaluator) error {
	var errs []error
	for i, r := range e.CompilationErrors() {
		errs = append(errs, fmt.Errorf("%s[%d]: %w", what, i, r))
	}
	return errors.Join(errs...)
}

func (d *celDriver) RemoveTemplate(_ context.Context, ct *templates.ConstraintTemplate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.validators, ct.GetName())
	return nil
}

func (d *celDriver) AddConstraint(context.Context, *unstructured.Unstructured) error    { return nil }
func (d *celDriver) RemoveConstraint(context.Context, *unstructured.Unstructured) error { return nil }
func (d *celDriver) AddData(context.Context, string, storage.Path, any) error           { return nil }
func (d *celDriver) RemoveData(context.Context, string, storage.Path) error             { return nil }
func (d *celDriver) Dump(context.Context) (string, error)                               { return "", nil }

func (d *celDriver) GetDescriptionForStat(stat string) (string, error) {
	return "", fmt.Errorf("unknown stat name for K8sNativeValidation: %s", stat)
}

// admissionRequester is what Gatekeeper's target hands a driver as the review.
type admissionRequester interface {
	GetAdmissionRequest() *admissionv1.AdmissionRequest
}

func (d *celDriver) Query(ctx context.Context, target string, constraints []*unstructured.Unstructured, review any, opts ...reviews.ReviewOpt) (*drivers.QueryResponse, error) {
	cfg := &reviews.ReviewCfg{}
	for _, opt := range opts {
		opt(cfg)
	}
	ar, ok := review.(admissionRequester)
	if !ok {
		return nil, fmt.Errorf("cannot read an AdmissionRequest from a review of type %T", review)
	}
	req := *ar.GetAdmissionRequest()
	// Gatekeeper sets object to oldObject on DELETE; a ValidatingAdmissionPolicy does not, and neither does
	// this driver, so that templates behave alike in both (variables.anyObject is set either way).
	if req.Operation == admissionv1.Delete {
		req.Object = runtime.RawExtension{}
	}
	attrs, err := versionedAttributes(&req)
	if err != nil {
		return nil, err
	}
	var namespace *corev1.Namespace
	if cfg.Namespace != nil {
		namespace, err = toNamespace(cfg.Namespace)
		if err != nil {
			return nil, err
		}
	}

	d.mu.RLock()
	defer d.mu.RUnlock()
	var results []*types.Result
	for _, constraint := range constraints {
		validator := d.validators[strings.ToLower(constraint.GetKind())]
		if validator == nil {
			return nil, fmt.Errorf("unknown constraint template validator: %s", constraint.GetKind())
		}
		response := validator.Validate(ctx, attrs.GetResource(), attrs, constraint, namespace, celapi.PerCallLimit, nil)
		for _, decision := range response.Decisions {
			if decision.Action == validating.ActionDeny {
				results = append(results, &types.Result{Target: target, Msg: decision.Message, Constraint: constraint})
			}
		}
	}
	return &drivers.QueryResponse{Results: results}, nil
}

func toNamespace(ns map[string]any) (*corev1.Namespace, error) {
	data, err := json.Marshal(ns)
	if err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	out := &corev1.Namespace{}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	return out, nil
}

// versionedAttributes presents an AdmissionRequest as the API server's admission attributes.
func versionedAttributes(req *admissionv1.AdmissionRequest) (*admission.VersionedAttributes, error) {
	w := &requestAttributes{req: req}
	for _, f := range []struct {
		raw  []byte
		into *runtime.Object
		what string
	}{{req.Object.Raw, &w.object, "object"}, {req.OldObject.Raw, &w.oldObject, "oldObject"}, {req.Options.Raw, &w.options, "options"}} {
		if len(f.raw) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(f.raw, u); err != nil {
			return nil, fmt.Errorf("could not unmarshal %s: %w", f.what, err)
		}
		*f.into = u
	}
	return &admission.VersionedAttributes{
		Attributes:         w,
		VersionedKind:      w.GetKind(),
		VersionedOldObject: admission.NewLazyObject(w.oldObject),
		VersionedObject:    admission.NewLazyObject(w.object),
	}, nil
}

// requestAttributes implements admission.Attributes over an AdmissionRequest.
type requestAttributes struct {
	req                        *admissionv1.AdmissionRequest
	object, oldObject, options runtime.Object
}

var _ admission.Attributes = (*requestAttributes)(nil)

func (w *requestAttributes) GetName() string      { return w.req.Name }
func (w *requestAttributes) GetNamespace() string { return w.req.Namespace }
func (w *requestAttributes) GetResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: w.req.Resource.Group, Version: w.req.Resource.Version, Resource: w.req.Resource.Resource}
}
func (w *requestAttributes) GetSubresource() string { return w.req.SubResource }

var operations = map[admissionv1.Operation]admission.Operation{
	admissionv1.Create:  admission.Create,
	admissionv1.Update:  admission.Update,
	admissionv1.Delete:  admission.Delete,
	admissionv1.Connect: admission.Connect,
}

func (w *requestAttributes) GetOperation() admission.Operation                     { return operations[w.req.Operation] }
func (w *requestAttributes) GetOperationOptions() runtime.Object                   { return w.options }
func (w *requestAttributes) IsDryRun() bool                                        { return w.req.DryRun != nil && *w.req.DryRun }
func (w *requestAttributes) GetObject() runtime.Object                             { return w.object }
func (w *requestAttributes) GetOldObject() runtime.Object                          { return w.oldObject }
func (w *requestAttributes) GetReinvocationContext() admission.ReinvocationContext { return nil }
func (w *requestAttributes) GetKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: w.req.Kind.Group, Version: w.req.Kind.Version, Kind: w.req.Kind.Kind}
}

func (w *requestAttributes) GetUserInfo() user.Info {
	extra := map[string][]string{}
	for k, v := range w.req.UserInfo.Extra {
		extra[k] = append([]string(nil), v...)
	}
	return &user.DefaultInfo{Name: w.req.UserInfo.Username, UID: w.req.UserInfo.UID, Groups: w.req.UserInfo.Groups, Extra: extra}
}

func (w *requestAttributes) AddAnnotation(string, string) error {
	return errors.New("AddAnnotation not implemented")
}

func (w *requestAttributes) AddAnnotationWithLevel(string, string, auditinternal.Level) error {
	return errors.New("AddAnnotationWithLevel not implemented")
}
