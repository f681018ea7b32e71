package exemptions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
)

// Sources of an exemption.
const (
	SourceAnnotation = "annotation"
	SourceException  = "PolicyException"
)

// Exemption is one waiver found for an object.
type Exemption struct {
	Source string `json:"source"`
	// Name is the annotation key, or namespace/name of the PolicyException.
	Name string `json:"name"`
	// Policies are the waived policies; empty means every exemptable policy (annotation "true").
	Policies []string  `json:"policies,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Approver string    `json:"approver,omitempty"`
	Expires  time.Time `json:"expires"`
}

// Covers reports whether e names policy.
func (e *Exemption) Covers(policy string) bool {
	return len(e.Policies) == 0 || slices.Contains(e.Policies, policy)
}

// Describe names the exemption for warnings: `PolicyException shop/web-debug (approved by bob, expires …)`.
func (e *Exemption) Describe() string {
	return fmt.Sprintf("%s %s (approved by %s, expires %s)", e.Source, e.Name, e.Approver, e.Expires.UTC().Format(time.RFC3339))
}

// Candidate is an exemption that matches the object, usable or not.
type Candidate struct {
	Exemption
	// Problem says why the exemption is ignored; empty when it applies.
	Problem string
}

// Denial is an exemption request that must itself refuse the request (an expiry beyond the maximum).
type Denial struct {
	Path    string
	Message string
	Fix     string
}

// Outcome is everything exemptions found for one object.
type Outcome struct {
	Candidates []Candidate
	Denials    []Denial
	// LookupError says PolicyExceptions could not be read (none are applied).
	LookupError error
}

// For returns the exemption that waives policy, or nil and the reasons matching exemptions for it were ignored.
func (o *Outcome) For(g *Governance, policy string, production bool) (*Exemption, []string) {
	var problems []string
	for i := range o.Candidates {
		c := &o.Candidates[i]
		if !c.Covers(policy) {
			continue
		}
		switch {
		case c.Problem != "":
			problems = append(problems, c.Problem)
		case g.NonExemptable(policy, production):
			problems = append(problems, fmt.Sprintf("%s %s cannot waive %s: the policy is not exemptable here", c.Source, c.Name, policy))
		default:
			return &c.Exemption, problems
		}
	}
	return nil, problems
}

// AnnotationSet is one place annotations are read from: the object's metadata, or a workload's pod template.
type AnnotationSet struct {
	// Path is the JSON path of the annotations map, e.g. metadata.annotations.
	Path   string
	Values map[string]string
}

// Subject is the object under admission, as exemptions see it.
type Subject struct {
	Kind, Namespace, Name string
	Labels                map[string]string
	// Annotations are the object's, then its pod template's (for workloads); the first set with an exempt
	// annotation is used.
	Annotations []AnnotationSet
	Owners      []metav1.OwnerReference
	User        string
	Groups      []string
	Now         time.Time
}

// Lookup reads the cluster state exemptions need, from a cache (never a per-request API call).
type Lookup interface {
	// Exceptions are the PolicyExceptions in namespace.
	Exceptions(ctx context.Context, namespace string) ([]v1alpha1.PolicyException, error)
	// Owner is the object an owner reference names, in namespace, or nil when it does not exist.
	Owner(ctx context.Context, namespace string, ref metav1.OwnerReference) (*metav1.PartialObjectMetadata, error)
}

// Resolve finds every exemption that matches s. known reports whether a policy name exists; lookup may be nil
// (no cluster: annotations only, plus whatever exceptions the CLI was given through a static Lookup).
func Resolve(ctx context.Context, g *Governance, lookup Lookup, known func(string) bool, s Subject) Outcome {
	var out Outcome
	annotationCandidate(g, known, s, &out)
	if s.Namespace != "" {
		listedCandidates(ctx, g, lookup, s, &out)
	}
	if lookup != nil && s.Namespace != "" {
		exceptionCandidates(ctx, g, lookup, s, &out)
	}
	return out
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		days := int(d / (24 * time.Hour))
		if days == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", days)
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}
