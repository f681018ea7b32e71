package exemptions

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
)

// SourceConfig is the source of an exemption listed in the configuration file.
const SourceConfig = "config"

// Listed is an exemption written in the configuration (the policy documents' "Temporary Exemptions" list): one
// policy waived for one object (or the objects a name glob selects) in one namespace until Expires. It matches as
// a PolicyException with one target does, and needs no approval in the cluster: the reviewed change to the
// configuration file is its approval, and ApprovedBy says whose it was. The config package validates it.
type Listed struct {
	// Field names it in the configuration, e.g. exemptions[0]; reports call it by that name.
	Field      string
	Policy     string
	Kind       string
	Namespace  string
	Name       string // a name or a glob (web-*)
	Reason     string
	ApprovedBy string
	Expires    time.Time
}

// exception is l as the PolicyException it matches like.
func (l *Listed) exception() *v1alpha1.PolicyException {
	return &v1alpha1.PolicyException{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Field},
		Spec: v1alpha1.PolicyExceptionSpec{
			Policies: []string{l.Policy},
			Targets:  []v1alpha1.ExceptionTarget{{Kinds: []string{l.Kind}, Names: []string{l.Name}}},
			Reason:   l.Reason, ApprovedBy: l.ApprovedBy, ExpiresAt: metav1.NewTime(l.Expires),
		},
	}
}

// listedCandidates adds the configuration's exemptions that target s, or (for a controller's request, when lookup
// can read owners) the owner that created it. An expired one is a candidate with its problem, so the denial says
// it expired.
func listedCandidates(ctx context.Context, g *Governance, lookup Lookup, s Subject, out *Outcome) {
	m := newSubjectMatcher(ctx, g, lookup, s)
	for i := range g.listed {
		l := &g.listed[i]
		if l.Namespace != s.Namespace || !m.targets(l.exception()) {
			continue
		}
		c := Candidate{Exemption: Exemption{
			Source: SourceConfig, Name: l.Field, Policies: []string{l.Policy},
			Reason: l.Reason, Approver: l.ApprovedBy, Expires: l.Expires,
		}}
		if !l.Expires.After(s.Now) {
			c.Problem = fmt.Sprintf("config exemption %s expired at %s; it is ignored", l.Field, l.Expires.UTC().Format(time.RFC3339))
		}
		out.Candidates = append(out.Candidates, c)
	}
}
