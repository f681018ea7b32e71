package admission

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

// exemptionPolicy is the name denials about exemptions themselves carry (an expiry beyond the maximum).
const exemptionPolicy = "exemptions"

// applyExemptions waives the violations an authorized, unexpired exemption covers (they stay in the decision,
// marked, and are reported as warnings), explains on the others why a matching exemption was ignored, and adds
// a denial for an exemption that asks for more than the governance allows.
func (e *Evaluator) applyExemptions(ctx context.Context, in Input, cfg *config.Config, gk workload.GroupKind, production bool, d *Decision) {
	if len(d.Violations) == 0 && !hasExemptAnnotation(in, gk) {
		return // the common case: nothing to exempt, and no subject to build
	}
	s := subject(in, gk)
	var lookup exemptions.Lookup
	if len(d.Violations) > 0 {
		lookup = e.exemptions // PolicyExceptions matter only when something is violated
	}
	out := exemptions.Resolve(ctx, cfg.Governance, lookup, e.knownPolicy(cfg), s)
	for _, den := range out.Denials {
		d.Violations = append(d.Violations, Violation{
			Policy: exemptionPolicy, Mode: policies.ModeEnforce, Severity: policies.SeverityHigh,
			Path: den.Path, Message: den.Message, Fix: den.Fix, Denied: true,
		})
	}
	for i := range d.Violations {
		v := &d.Violations[i]
		if v.Policy == exemptionPolicy || v.Err {
			continue // evaluation errors fail closed: nothing exempts a policy that could not run
		}
		ex, problems := out.For(cfg.Governance, v.Policy, production)
		if ex == nil {
			v.ExemptionNotes = problems
			continue
		}
		v.Exemption = ex
		v.Denied = false
		if left := ex.Expires.Sub(s.Now); left <= cfg.Governance.ExpiryWarning {
			d.Warnings = append(d.Warnings, fmt.Sprintf("exemption %s %s expires in %s (%s): renew it or fix the violation", ex.Source, ex.Name, left.Round(time.Minute), ex.Expires.UTC().Format(time.RFC3339)))
		}
	}
	for i := range d.Results {
		r := &d.Results[i]
		if r.Outcome != OutcomeFailed {
			continue
		}
		all := true
		for _, v := range d.Violations {
			if v.Policy == r.Policy && v.Exemption == nil {
				all = false
			}
		}
		if all {
			r.Outcome = OutcomeExempted
		}
	}
}

// subject is the object as exemptions see it.
func subject(in Input, gk workload.GroupKind) exemptions.Subject {
	md, _ := in.Object["metadata"].(map[string]any)
	s := exemptions.Subject{
		Kind: in.Request.Kind, Namespace: in.Request.Namespace, Name: in.Request.Name,
		Labels: stringMap(md["labels"]), User: in.Request.Username, Groups: in.Request.Groups,
		Now: time.Unix(0, in.Request.TimestampNS),
	}
	if name, _ := md["name"].(string); name != "" {
		s.Name = name
	}
	if a := stringMap(md["annotations"]); a != nil {
		s.Annotations = append(s.Annotations, exemptions.AnnotationSet{Path: "metadata.annotations", Values: a})
	}
	if gk.Kind != "Pod" {
		if tmd := workload.PodTemplateMetadata(gk, in.Object); tmd != nil {
			if a := stringMap(tmd["annotations"]); a != nil {
				s.Annotations = append(s.Annotations, exemptions.AnnotationSet{Path: templatePath(gk) + ".metadata.annotations", Values: a})
			}
		}
	}
	if refs, ok := md["ownerReferences"].([]any); ok {
		var owners []metav1.OwnerReference
		for _, r := range refs {
			if ref, ok := ownerReference(r); ok {
				owners = append(owners, ref)
			}
		}
		s.Owners = owners
	}
	return s
}

// hasExemptAnnotation is subject's hasAnnotation, read without building the subject.
func hasExemptAnnotation(in Input, gk workload.GroupKind) bool {
	md, _ := in.Object["metadata"].(map[string]any)
	if exemptAnnotation(md) {
		return true
	}
	if gk.Kind != "Pod" {
		if tmd := workload.PodTemplateMetadata(gk, in.Object); tmd != nil && exemptAnnotation(tmd) {
			return true
		}
	}
	return false
}

// exemptAnnotation reports whether metadata md has the exempt annotation (a string, as stringMap keeps it).
func exemptAnnotation(md map[string]any) bool {
	a, _ := md["annotations"].(map[string]any)
	_, ok := a[exemptions.AnnotationExempt].(string)
	return ok
}

// ownerReference reads an owner reference as runtime.DefaultUnstructuredConverter does (a field of the wrong type
// makes the whole reference unreadable, unknown fields are ignored, null is unset) without its reflection, which
// cost more than the rest of a Pod's exemption check.
func ownerReference(v any) (metav1.OwnerReference, bool) {
	var ref metav1.OwnerReference
	m, ok := v.(map[string]any)
	if !ok {
		return ref, false
	}
	var uid string
	if !readString(m["apiVersion"], &ref.APIVersion) || !readString(m["kind"], &ref.Kind) ||
		!readString(m["name"], &ref.Name) || !readString(m["uid"], &uid) ||
		!readBool(m["controller"], &ref.Controller) || !readBool(m["blockOwnerDeletion"], &ref.BlockOwnerDeletion) {
		return ref, false
	}
	ref.UID = types.UID(uid)
	return ref, true
}

// readString sets *dst to v when v is a string; nil leaves it unset; anything else is false.
func readString(v any, dst *string) bool {
	switch s := v.(type) {
	case nil:
		return true
	case string:
		*dst = s
		return true
	}
	return false
}

// readBool sets *dst to v when v is a boolean; nil leaves it unset; anything else is false.
func readBool(v any, dst **bool) bool {
	switch b := v.(type) {
	case nil:
		return true
	case bool:
		*dst = &b
		return true
	}
	return false
}

func templatePath(gk workload.GroupKind) string {
	if gk.Kind == "CronJob" {
		return "spec.jobTemplate.spec.template"
	}
	return "spec.template"
}

// stringMap reads a map of strings (labels, annotations); values of other types are dropped, as the API
// server would refuse them anyway.
func stringMap(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		if s, ok := val.(string); ok {
			out[k] = s
		}
	}
	return out
}

// exemptionSuffix explains, after a denial, why exemptions that match did not apply.
func exemptionSuffix(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}
