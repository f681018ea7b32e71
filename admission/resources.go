package admission

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
)

// PatchOp is one JSON Patch operation of a mutation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
	// Policy wrote the operation ("" for digest pinning); never sent, `attest policy conflicts` reads it.
	Policy string `json:"-"`
}

// MarshalJSON writes value for every operation but remove, including false, 0 and "" values.
func (o PatchOp) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	type plain PatchOp
	return json.Marshal(plain(o))
}

// isException reports whether the request is for ATTEST's PolicyException resource.
func isException(in Input) bool {
	return in.Request.Group == v1alpha1.GroupVersion.Group && in.Request.Kind == "PolicyException"
}

// decodeException reads a PolicyException from its JSON-shaped map; nil map, nil result.
func decodeException(obj map[string]any) (*v1alpha1.PolicyException, error) {
	if obj == nil {
		return nil, nil
	}
	pe := &v1alpha1.PolicyException{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, pe); err != nil {
		return nil, fmt.Errorf("cannot read the PolicyException: %w", err)
	}
	return pe, nil
}

// validateException admits a PolicyException only when it is valid and its governance fields are what ATTEST's
// mutating webhook wrote: a creator or approval typed by hand, or slipped past the mutating path, is refused.
func (e *Evaluator) validateException(in Input, cfg *config.Config) Decision {
	pe, err := decodeException(in.Object)
	if err != nil {
		return badRequest(err)
	}
	old, err := decodeException(in.OldObject)
	if err != nil {
		return badRequest(err)
	}
	now := timeOf(in)
	problems := exemptions.ValidateException(cfg.Governance, e.knownPolicy(cfg), pe, old, now)
	w := exemptions.Writer{User: in.Request.Username, Groups: in.Request.Groups}
	if msg := governedByAttest(cfg.Governance, w, pe, old, now); msg != "" {
		problems = append(problems, msg)
	}
	d := Decision{}
	for _, p := range problems {
		field, msg, _ := strings.Cut(p, ": ")
		d.Violations = append(d.Violations, Violation{Policy: "PolicyException", Mode: "enforce", Severity: "high", Path: field, Message: msg, Denied: true})
	}
	d.finish()
	return d
}

// governedByAttest compares the object's creator and approvals with what Govern derives from the old object,
// allowing exactly one new approval by the requester (the one the mutating path just recorded).
func governedByAttest(g *exemptions.Governance, w exemptions.Writer, pe, old *v1alpha1.PolicyException, now time.Time) string {
	const fix = "status and the created-by annotation are written by ATTEST; re-apply without editing them"
	wantAnn, want, err := exemptions.Govern(g, w, pe, old, now)
	if err != nil {
		return "metadata.annotations: " + err.Error()
	}
	if pe.Annotations[v1alpha1.AnnotationCreatedBy] != wantAnn[v1alpha1.AnnotationCreatedBy] {
		return fmt.Sprintf("metadata.annotations[%q]: not the authenticated creator; %s", v1alpha1.AnnotationCreatedBy, fix)
	}
	key := func(a v1alpha1.Approval) string { return a.User + "/" + a.SpecHash }
	got := pe.Status.Approvals
	same := func(a, b []v1alpha1.Approval) bool {
		return slices.EqualFunc(a, b, func(x, y v1alpha1.Approval) bool { return key(x) == key(y) })
	}
	if same(got, want.Approvals) {
		return ""
	}
	if n := len(got); n == len(want.Approvals)+1 && same(got[:n-1], want.Approvals) {
		last := got[n-1]
		if last.User == w.User && last.SpecHash == exemptions.SpecHash(pe.Spec) && last.User != wantAnn[v1alpha1.AnnotationCreatedBy] && g.MayApprove(w.User, w.Groups) {
			return ""
		}
	}
	return "status.approvals: approvals are recorded only by ATTEST from the approver's own request; " + fix
}

// mutateException writes the governance fields of a PolicyException, or refuses an approval that must not count.
func (e *Evaluator) mutateException(in Input, cfg *config.Config) Decision {
	pe, err := decodeException(in.Object)
	if err != nil {
		return badRequest(err)
	}
	old, err := decodeException(in.OldObject)
	if err != nil {
		return badRequest(err)
	}
	ann, status, err := exemptions.Govern(cfg.Governance, exemptions.Writer{User: in.Request.Username, Groups: in.Request.Groups}, pe, old, timeOf(in))
	if err != nil {
		return Decision{Code: 403, Message: "[PolicyException] " + err.Error()}
	}
	statusMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
	if err != nil {
		return Decision{Code: 500, Message: fmt.Sprintf("ATTEST could not record the PolicyException status: %v", err)}
	}
	annMap := make(map[string]any, len(ann))
	for k, v := range ann {
		annMap[k] = v
	}
	return Decision{Allowed: true, Code: 200, Patches: []PatchOp{
		{Op: "add", Path: "/metadata/annotations", Value: annMap},
		{Op: "add", Path: "/status", Value: statusMap},
	}}
}
