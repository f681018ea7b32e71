package exemptions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/continuums/attest/api/v1alpha1"
)

// maxOwnerDepth bounds the ownerReference walk: Pod → ReplicaSet → Deployment, Pod → Job → CronJob.
const maxOwnerDepth = 3

// Phases of a PolicyException.
const (
	PhasePending  = "Pending"
	PhaseApproved = "Approved"
)

// SpecHash identifies a PolicyException spec; approvals of another spec do not count.
func SpecHash(spec v1alpha1.PolicyExceptionSpec) string {
	b, err := json.Marshal(spec)
	if err != nil {
		return "" // a spec that cannot be marshalled matches no approval
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Approvals counts the approvals that hold: recorded for the current spec, by distinct approvers the governance
// accepts, none of them the creator. It returns the count and the number required.
func Approvals(g *Governance, pe *v1alpha1.PolicyException) (valid, required int) {
	required = g.RequiredApprovers
	if pe.Spec.Emergency {
		required = g.EmergencyApprovers
	}
	creator := pe.Annotations[v1alpha1.AnnotationCreatedBy]
	if creator == "" {
		return 0, required // not admitted through ATTEST: nobody is known to be "not the creator"
	}
	hash := SpecHash(pe.Spec)
	seen := map[string]bool{}
	for _, a := range pe.Status.Approvals {
		if a.SpecHash != hash || a.User == "" || a.User == creator || seen[a.User] || !g.MayApprove(a.User, a.Groups) {
			continue
		}
		seen[a.User] = true
	}
	return len(seen), required
}

// exceptionCandidates adds the PolicyExceptions of s's namespace that target s, or the owner that created it.
func exceptionCandidates(ctx context.Context, g *Governance, lookup Lookup, s Subject, out *Outcome) {
	list, err := lookup.Exceptions(ctx, s.Namespace)
	if err != nil {
		out.LookupError = err
		return
	}
	m := newSubjectMatcher(ctx, g, lookup, s)
	for i := range list {
		pe := &list[i]
		if !m.targets(pe) {
			continue
		}
		c := Candidate{Exemption: Exemption{
			Source: SourceException, Name: pe.Namespace + "/" + pe.Name, Policies: pe.Spec.Policies,
			Reason: pe.Spec.Reason, Approver: approvers(pe), Expires: pe.Spec.ExpiresAt.Time,
		}}
		if len(c.Policies) == 0 {
			c.Problem = fmt.Sprintf("PolicyException %s names no policy", c.Name)
		} else if pe.Spec.Emergency && g.EmergencyOff {
			c.Problem = fmt.Sprintf("PolicyException %s is an emergency exception, and emergency exceptions are turned off (governance.emergency_override.enabled: false)", c.Name)
		} else if valid, required := Approvals(g, pe); valid < required {
			c.Problem = fmt.Sprintf("PolicyException %s is pending: %d of %d required approvals from %s", c.Name, valid, required, g.ApproverAuthority())
		} else if !c.Expires.After(s.Now) {
			c.Problem = fmt.Sprintf("PolicyException %s expired at %s; it is ignored", c.Name, c.Expires.UTC().Format(time.RFC3339))
		}
		out.Candidates = append(out.Candidates, c)
	}
}

// subjectMatcher tells whether an exception targets the subject or, for a controller's request when owners can be
// read, an owner that created it; the owner chain is read once, when an exception first needs it.
type subjectMatcher struct {
	ctx        context.Context
	lookup     Lookup
	s          Subject
	controller bool
	owners     []target
	ownersRead bool
}

func newSubjectMatcher(ctx context.Context, g *Governance, lookup Lookup, s Subject) *subjectMatcher {
	return &subjectMatcher{ctx: ctx, lookup: lookup, s: s, controller: lookup != nil && g.IsController(s.User)}
}

func (m *subjectMatcher) targets(pe *v1alpha1.PolicyException) bool {
	if matches(pe, target{kind: m.s.Kind, name: m.s.Name, labels: m.s.Labels}) {
		return true
	}
	if !m.controller {
		return false
	}
	if !m.ownersRead {
		m.owners, m.ownersRead = ownerChain(m.ctx, m.lookup, m.s), true
	}
	for _, o := range m.owners {
		if matches(pe, o) {
			return true
		}
	}
	return false
}

// approvers lists who approved, for reports; the spec's approvedBy is shown only when nobody has yet.
func approvers(pe *v1alpha1.PolicyException) string {
	var users []string
	hash := SpecHash(pe.Spec)
	for _, a := range pe.Status.Approvals {
		if a.SpecHash == hash {
			users = append(users, a.User)
		}
	}
	if len(users) == 0 {
		return pe.Spec.ApprovedBy + " (not yet approved in the cluster)"
	}
	return strings.Join(users, ", ")
}

type target struct {
	kind, name string
	labels     map[string]string
}

// ownerChain follows controller ownerReferences through the cache, checking each owner's UID, so only an owner
// that exists and is the one referenced counts.
func ownerChain(ctx context.Context, lookup Lookup, s Subject) []target {
	var chain []target
	refs := s.Owners
	for depth := 0; depth < maxOwnerDepth; depth++ {
		ref := controllerRef(refs)
		if ref == nil {
			break
		}
		owner, err := lookup.Owner(ctx, s.Namespace, *ref)
		if err != nil || owner == nil || owner.UID != ref.UID {
			break
		}
		chain = append(chain, target{kind: ref.Kind, name: owner.Name, labels: owner.Labels})
		refs = owner.OwnerReferences
	}
	return chain
}

func controllerRef(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// matches reports whether any target of pe selects t (in pe's namespace: the caller only passes those).
func matches(pe *v1alpha1.PolicyException, t target) bool {
	for _, tg := range pe.Spec.Targets {
		if tg.Namespace != "" && tg.Namespace != pe.Namespace {
			continue
		}
		if len(tg.Kinds) > 0 && !containsFold(tg.Kinds, t.kind) {
			continue
		}
		if len(tg.Names) > 0 && !nameMatches(tg.Names, t.name) {
			continue
		}
		if tg.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(tg.Selector)
			if err != nil || !sel.Matches(labels.Set(t.labels)) {
				continue
			}
		}
		if len(tg.Kinds) == 0 && len(tg.Names) == 0 && tg.Selector == nil {
			continue // an empty target selects nothing, never everything
		}
		return true
	}
	return false
}

func nameMatches(globs []string, name string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, name); err == nil && ok {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
