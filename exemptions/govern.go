package exemptions

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
)

// Writer is the authenticated requester writing a PolicyException.
type Writer struct {
	User   string
	Groups []string
}

// ValidateException checks a PolicyException being created or changed; each problem names its field. known
// reports whether a policy exists. Expiry is judged only when the spec is new or changed, so approving an
// exception is never refused for its age.
func ValidateException(g *Governance, known func(string) bool, pe, old *v1alpha1.PolicyException, now time.Time) []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	spec := pe.Spec
	if len(spec.Policies) == 0 {
		add("spec.policies: name at least one policy")
	}
	for i, p := range spec.Policies {
		switch {
		case known != nil && !known(p):
			add("spec.policies[%d]: unknown policy %q (see `attest policy list`)", i, p)
		case g.NonExemptable(p, false):
			add("spec.policies[%d]: policy %q cannot be exempted (exemptions.nonExemptable)", i, p)
		}
	}
	if len(spec.Targets) == 0 {
		add("spec.targets: name at least one target (kinds, names or a selector)")
	}
	for i, t := range spec.Targets {
		if len(t.Kinds) == 0 && len(t.Names) == 0 && t.Selector == nil {
			add("spec.targets[%d]: a target needs kinds, names or a selector", i)
		}
		if t.Namespace != "" && t.Namespace != pe.Namespace {
			add("spec.targets[%d].namespace: %q is outside the exception's namespace %q; a PolicyException only covers objects in its own namespace", i, t.Namespace, pe.Namespace)
		}
		for j, n := range t.Names {
			if _, err := path.Match(n, ""); err != nil || n == "" || strings.Contains(n, "/") {
				add("spec.targets[%d].names[%d]: %q is not a name or glob (e.g. web or web-*)", i, j, n)
			}
		}
		if t.Selector != nil {
			if _, err := metav1.LabelSelectorAsSelector(t.Selector); err != nil {
				add("spec.targets[%d].selector: %v", i, err)
			}
		}
	}
	if spec.Emergency && g.EmergencyOff {
		add("spec.emergency: emergency exceptions are turned off (governance.emergency_override.enabled: false); ask for a regular one")
	}
	if strings.TrimSpace(spec.Reason) == "" {
		add("spec.reason: say why the exception is needed")
	}
	if strings.TrimSpace(spec.ApprovedBy) == "" {
		add("spec.approvedBy: name the approver (approvals themselves are recorded by `attest policy exempt approve`)")
	}
	if old == nil || SpecHash(old.Spec) != SpecHash(spec) {
		expires := spec.ExpiresAt.Time
		switch {
		case expires.IsZero():
			add("spec.expiresAt: required (RFC 3339, at most %s ahead)", humanDuration(g.MaxDuration))
		case !expires.After(now):
			add("spec.expiresAt: %s is in the past", expires.UTC().Format(time.RFC3339))
		case expires.After(now.Add(g.MaxDuration)):
			add("spec.expiresAt: %s is beyond the maximum of %s from now (latest allowed: %s)", expires.UTC().Format(time.RFC3339), humanDuration(g.MaxDuration), now.Add(g.MaxDuration).UTC().Format(time.RFC3339))
		}
	}
	return errs
}

// Govern computes the fields the webhook owns on a PolicyException being written by w: the creator annotation,
// the approvals (carried over from old, dropped when the spec changes, extended by an approve request), and
// the phase. Values the writer typed into them are replaced. It refuses approve requests that must not count:
// by the creator, by a non-approver, or on creation.
func Govern(g *Governance, w Writer, pe, old *v1alpha1.PolicyException, now time.Time) (map[string]string, v1alpha1.PolicyExceptionStatus, error) {
	annotations := maps.Clone(pe.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	comment, approving := annotations[v1alpha1.AnnotationApprove]
	delete(annotations, v1alpha1.AnnotationApprove)
	hash := SpecHash(pe.Spec)
	var approvals []v1alpha1.Approval
	creator := w.User
	if old != nil {
		creator = old.Annotations[v1alpha1.AnnotationCreatedBy]
		for _, a := range old.Status.Approvals {
			if a.SpecHash == hash {
				approvals = append(approvals, a)
			}
		}
	}
	if creator == "" {
		delete(annotations, v1alpha1.AnnotationCreatedBy)
	} else {
		annotations[v1alpha1.AnnotationCreatedBy] = creator
	}
	if approving {
		switch {
		case old == nil:
			return nil, v1alpha1.PolicyExceptionStatus{}, fmt.Errorf("a PolicyException cannot be approved as it is created: create it, then an approver runs `attest policy exempt approve %s`", pe.Name)
		case w.User == creator:
			return nil, v1alpha1.PolicyExceptionStatus{}, fmt.Errorf("%s created PolicyException %s and cannot approve it: another member of %s must", w.User, pe.Name, g.ApproverAuthority())
		case !g.MayApprove(w.User, w.Groups):
			return nil, v1alpha1.PolicyExceptionStatus{}, fmt.Errorf("%s may not approve PolicyExceptions: approvers are %s", w.User, g.ApproverAuthority())
		case !slices.ContainsFunc(approvals, func(a v1alpha1.Approval) bool { return a.User == w.User }):
			approvals = append(approvals, v1alpha1.Approval{
				User: w.User, Groups: slices.Clone(w.Groups), Time: metav1.NewTime(now.UTC().Truncate(time.Second)),
				Comment: truncateComment(comment), SpecHash: hash,
			})
		}
	}
	governed := pe.DeepCopy()
	governed.Annotations = annotations
	governed.Status = v1alpha1.PolicyExceptionStatus{Approvals: approvals, SpecHash: hash}
	valid, required := Approvals(g, governed)
	governed.Status.ApprovalCount = valid
	governed.Status.Phase = PhasePending
	if valid >= required {
		governed.Status.Phase = PhaseApproved
	}
	return annotations, governed.Status, nil
}

func truncateComment(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 512 {
		return s[:512]
	}
	return s
}
