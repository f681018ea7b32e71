// Package gatekeeper evaluates Gatekeeper ConstraintTemplates and Constraints with Gatekeeper's semantics.
//
// It is built on Gatekeeper's own evaluation library, the one Gatekeeper and gator run: the constraint
// framework's client and Rego driver (github.com/open-policy-agent/frameworks/constraint) and Gatekeeper's
// admission target (github.com/open-policy-agent/gatekeeper/v3/pkg/target), which turns an object or an
// AdmissionRequest into input.review, matches constraints (kinds, scope, namespaces, excludedNamespaces,
// labelSelector, namespaceSelector, name), validates parameters against the template's openAPIV3Schema and keeps
// data.inventory. K8sNativeValidation (CEL) templates run on celDriver, Gatekeeper's CEL driver adapted to this
// module's k8s.io/apiserver (see celdriver.go).
package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"io"

	apiconstraints "github.com/open-policy-agent/frameworks/constraint/pkg/apis/constraints"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/expansion"
	mutationtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"github.com/open-policy-agent/opa/v1/topdown/print"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Enforcement points: where a constraint's scoped enforcement actions apply.
const (
	EnforcementPointWebhook = util.WebhookEnforcementPoint
	EnforcementPointAudit   = util.AuditEnforcementPoint
	EnforcementPointGator   = util.GatorEnforcementPoint
)

// ErrSchema: a constraint does not satisfy its template's schema (parameters) or Gatekeeper's (match).
var ErrSchema = apiconstraints.ErrSchema

// Options configure a Client.
type Options struct {
	// EnforcementPoint selects the scoped enforcement actions that apply (default EnforcementPointWebhook).
	EnforcementPoint string
	// Print, if set, receives the output of Rego print() calls, one line each.
	Print io.Writer
	// NoCEL leaves K8sNativeValidation out (gator's --enable-k8s-native-validation=false): templates with both
	// sources run their Rego, templates with CEL only cannot be added.
	NoCEL bool
}

// A Client holds templates, constraints and data.inventory, and reviews objects against them.
// It is safe for concurrent use.
type Client struct {
	cc *constraintclient.Client
	ep string
}

// A Result is one violation.
type Result struct {
	// Kind and Name identify the constraint; Policy is "<Kind>/<name>".
	Kind, Name, Policy string
	// Message is the violation's msg (Rego) or message / messageExpression (CEL).
	Message string
	// Details is the violation's details (Rego), if any.
	Details any
	// EnforcementAction is the constraint's action at the Client's enforcement point: deny, dryrun, warn or
	// scoped; ScopedActions lists the scoped actions that apply there.
	EnforcementAction string
	ScopedActions     []string
}

// New returns a Client with no templates.
func New(o Options) (*Client, error) {
	ep := o.EnforcementPoint
	if ep == "" {
		ep = EnforcementPointWebhook
	}
	var args []rego.Arg
	if o.Print != nil {
		args = append(args, rego.PrintEnabled(true), rego.PrintHook(printHook{o.Print}))
	}
	regoDriver, err := rego.New(args...)
	if err != nil {
		return nil, fmt.Errorf("rego driver: %w", err)
	}
	// The CEL driver first: a template with both sources runs its CEL, as in Gatekeeper and gator.
	opts := []constraintclient.Opt{constraintclient.Targets(&target.K8sValidationTarget{})}
	if !o.NoCEL {
		opts = append(opts, constraintclient.Driver(newCELDriver()))
	}
	opts = append(opts, constraintclient.Driver(regoDriver), constraintclient.EnforcementPoints(ep))
	cc, err := constraintclient.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("constraint client: %w", err)
	}
	return &Client{cc: cc, ep: ep}, nil
}

// AddTemplate compiles a template. Rego that does not compile, CEL that does not compile, a missing or
// unknown target and a name that is not the lower-cased kind are errors, with the compiler's message.
func (c *Client) AddTemplate(ctx context.Context, t *Template) error {
	if _, err := c.cc.AddTemplate(ctx, t.ct); err != nil {
		return fmt.Errorf("template %s: %w", t.Name(), err)
	}
	return nil
}

// AddConstraint adds a constraint of a template added before. Parameters that do not satisfy the template's
// openAPIV3Schema, a malformed match and an unknown enforcementAction are errors (ErrSchema for the first two).
func (c *Client) AddConstraint(ctx context.Context, k *Constraint) error {
	action := util.EnforcementAction(k.EnforcementAction())
	if err := util.ValidateEnforcementAction(action, k.u.Object); err != nil {
		return fmt.Errorf("constraint %s: %w", k.Policy(), err)
	}
	if _, err := c.cc.AddConstraint(ctx, k.u); err != nil {
		return fmt.Errorf("constraint %s: %w", k.Policy(), err)
	}
	return nil
}

// AddInventory puts an object into data.inventory (and, for a Namespace, into the cache namespaceSelector
// matches against).
func (c *Client) AddInventory(ctx context.Context, obj *unstructured.Unstructured) error {
	if _, err := c.cc.AddData(ctx, obj); err != nil {
		return fmt.Errorf("inventory %s %s/%s: %w", obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// Review evaluates every matching constraint against obj as a CREATE of it, as gator does.
func (c *Client) Review(ctx context.Context, obj *unstructured.Unstructured) ([]Result, error) {
	return c.review(ctx, target.AugmentedUnstructured{Object: *obj, Source: mutationtypes.SourceTypeOriginal})
}

// ReviewRequest evaluates every matching constraint against an admission request.
func (c *Client) ReviewRequest(ctx context.Context, req *admissionv1.AdmissionRequest) ([]Result, error) {
	return c.review(ctx, target.AugmentedReview{AdmissionRequest: req, Source: mutationtypes.SourceTypeOriginal})
}

// ReviewExpanded reviews obj as Review does, then each object the Expander's ExpansionTemplates generate from
// it (a Deployment's Pod), as gator does: their violations carry "[Implied by <template>]" and the
// ExpansionTemplate's enforcementAction when it sets one.
func (c *Client) ReviewExpanded(ctx context.Context, obj *unstructured.Unstructured, e *Expander) ([]Result, error) {
	opts := []reviews.ReviewOpt{reviews.EnforcementPoint(c.ep)}
	resp, err := c.cc.Review(ctx, target.AugmentedUnstructured{Object: *obj, Source: mutationtypes.SourceTypeOriginal}, opts...)
	if err != nil {
		return nil, err
	}
	if !e.empty() {
		if err := c.expand(ctx, e, obj.DeepCopy(), nil, "", "", resp, opts); err != nil {
			return nil, err
		}
	}
	return toResults(resp.Results()), nil
}

// expand reviews what the Expander generates from base, as Gatekeeper's webhook and gator do, and adds the
// results to resp.
func (c *Client) expand(ctx context.Context, e *Expander, base *unstructured.Unstructured, ns *corev1.Namespace, user string, op admissionv1.Operation, resp *types.Responses, opts []reviews.ReviewOpt) error {
	resultants, err := e.sys.Expand(&mutationtypes.Mutable{Object: base, Namespace: ns, Username: user})
	if err != nil {
		return fmt.Errorf("expand %s %s: %w", base.GetKind(), base.GetName(), err)
	}
	for _, res := range resultants {
		child, err := c.cc.Review(ctx, &target.AugmentedUnstructured{
			Object: *res.Obj, Namespace: ns, Operation: op, Source: mutationtypes.SourceTypeGenerated,
		}, opts...)
		if err != nil {
			return fmt.Errorf("review the %s that ExpansionTemplate %s generates: %w", res.Obj.GetKind(), res.TemplateName, err)
		}
		expansion.OverrideEnforcementAction(res.EnforcementAction, child)
		expansion.AggregateResponses(res.TemplateName, resp, child)
	}
	return nil
}

func (c *Client) review(ctx context.Context, review any) ([]Result, error) {
	resp, err := c.cc.Review(ctx, review, reviews.EnforcementPoint(c.ep))
	if err != nil {
		return nil, err
	}
	return toResults(resp.Results()), nil
}

func toResults(rs []*types.Result) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		res := Result{Message: r.Msg, EnforcementAction: r.EnforcementAction, ScopedActions: r.ScopedEnforcementActions}
		if r.Constraint != nil {
			res.Kind, res.Name = r.Constraint.GetKind(), r.Constraint.GetName()
			res.Policy = res.Kind + "/" + res.Name
		}
		if d, ok := r.Metadata["details"]; ok {
			res.Details = d
		}
		out = append(out, res)
	}
	return out
}

type printHook struct{ w io.Writer }

func (h printHook) Print(_ print.Context, msg string) error {
	_, err := fmt.Fprintln(h.w, msg)
	return err
}

// IsSchemaError tells whether err is a constraint that does not satisfy its schema.
func IsSchemaError(err error) bool { return errors.Is(err, ErrSchema) }
