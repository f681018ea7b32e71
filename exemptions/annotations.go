package exemptions

import (
	"fmt"
	"strings"
	"time"

	"github.com/continuums/attest/policies"
)

// The policy documents' exemption annotations; all four are required.
const (
	AnnotationExempt     = "policy.attest.continuu.ms/exempt"
	AnnotationReason     = "policy.attest.continuu.ms/exempt-reason"
	AnnotationApprovedBy = "policy.attest.continuu.ms/exempt-approved-by"
	AnnotationExpires    = "policy.attest.continuu.ms/exempt-expires"
	// AnnotationAuthorizedBy is written by ATTEST's mutating webhook (never trusted from anyone else): the
	// authorized user who applied the annotations, so the Pods a controller creates from that template inherit them.
	AnnotationAuthorizedBy = "policy.attest.continuu.ms/exempt-authorized-by"
)

// annotationCandidate reads the exemption annotations of s, if any, into out.
func annotationCandidate(g *Governance, known func(string) bool, s Subject, out *Outcome) {
	var set *AnnotationSet
	for i := range s.Annotations {
		if _, ok := s.Annotations[i].Values[AnnotationExempt]; ok {
			set = &s.Annotations[i]
			break
		}
	}
	if set == nil {
		return
	}
	key := func(k string) string { return fmt.Sprintf("%s[%q]", set.Path, k) }
	c := Candidate{Exemption: Exemption{Source: SourceAnnotation, Name: key(AnnotationExempt)}}
	defer func() { out.Candidates = append(out.Candidates, c) }()
	v := set.Values
	policies, err := parseExemptList(v[AnnotationExempt], known)
	if err != nil {
		c.Problem = fmt.Sprintf("exemption ignored: %s %s", key(AnnotationExempt), err)
		return
	}
	c.Policies = policies
	c.Reason = strings.TrimSpace(v[AnnotationReason])
	c.Approver = strings.TrimSpace(v[AnnotationApprovedBy])
	for _, required := range []struct{ key, value string }{{AnnotationReason, c.Reason}, {AnnotationApprovedBy, c.Approver}} {
		if required.value == "" {
			c.Problem = fmt.Sprintf("exemption ignored: %s is missing or empty (all four of exempt, exempt-reason, exempt-approved-by and exempt-expires are required)", key(required.key))
			return
		}
	}
	raw, ok := v[AnnotationExpires]
	if !ok || strings.TrimSpace(raw) == "" {
		c.Problem = fmt.Sprintf("exemption ignored: %s is missing (an RFC 3339 time, e.g. %s)", key(AnnotationExpires), s.Now.Add(7*24*time.Hour).UTC().Format(time.RFC3339))
		return
	}
	expires, err := time.Parse(time.RFC3339, strings.TrimSpace(raw))
	if err != nil {
		c.Problem = fmt.Sprintf("exemption ignored: %s %q is not an RFC 3339 time (e.g. %s)", key(AnnotationExpires), raw, s.Now.Add(7*24*time.Hour).UTC().Format(time.RFC3339))
		return
	}
	c.Expires = expires
	authorizedBy := ""
	switch {
	case g.MayAnnotate(s.User, s.Groups):
		authorizedBy = s.User
	case g.IsController(s.User) && set.Values[AnnotationAuthorizedBy] != "":
		authorizedBy = set.Values[AnnotationAuthorizedBy]
	default:
		c.Problem = fmt.Sprintf("exemption ignored: exemption annotations are honoured only for %s, and %s is not one of them", g.AnnotationAuthority(), s.User)
		return
	}
	if !expires.After(s.Now) {
		c.Problem = fmt.Sprintf("exemption ignored: it expired at %s (%s)", expires.UTC().Format(time.RFC3339), key(AnnotationExpires))
		return
	}
	if limit := s.Now.Add(g.MaxDuration); expires.After(limit) {
		c.Problem = "exemption refused: expiry beyond the maximum"
		out.Denials = append(out.Denials, Denial{
			Path:    key(AnnotationExpires),
			Message: fmt.Sprintf("exemption expiry %s is beyond the maximum of %s from now", expires.UTC().Format(time.RFC3339), humanDuration(g.MaxDuration)),
			Fix:     fmt.Sprintf("set an expiry no later than %s", limit.UTC().Format(time.RFC3339)),
		})
		return
	}
	if c.Approver != authorizedBy {
		c.Approver = fmt.Sprintf("%s (applied by %s)", c.Approver, authorizedBy)
	}
}

// parseExemptList reads "true" or a comma list of known policy names.
func parseExemptList(v string, known func(string) bool) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "true" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if !policies.ValidName(p) {
			return nil, fmt.Errorf("%q is neither \"true\" nor a comma-separated list of policy names (e.g. \"no-privileged,trusted-registries\")", v)
		}
		if known != nil && !known(p) {
			return nil, fmt.Errorf("names unknown policy %q (see `attest policy list`)", p)
		}
		out = append(out, p)
	}
	return out, nil
}
