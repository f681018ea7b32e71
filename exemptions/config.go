// Package exemptions decides which policy violations are waived for an object: annotation exemptions (honoured
// only for authorized requesters) and approved PolicyException resources, each with an expiry and always reported.
// It is a security boundary: every rule here fails towards "not exempted", with a message saying why.
package exemptions

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/continuums/attest/policies"
)

// Config is the `exemptions:` section of policies.yaml.
type Config struct {
	// AnnotationGroups and AnnotationUsers may use annotation exemptions (a break-glass group).
	AnnotationGroups []string `json:"annotationGroups,omitempty"`
	AnnotationUsers  []string `json:"annotationUsers,omitempty"`
	// MaxDuration bounds how far ahead an exemption may expire: "30d", "720h", "2w" (default 30d).
	MaxDuration string `json:"maxDuration,omitempty"`
	// NonExemptable policies cannot be exempted (everywhere, or only in production namespaces).
	NonExemptable []NonExemptable `json:"nonExemptable,omitempty"`
	// Approval is the PolicyException governance: who approves, and how many must.
	Approval Approval `json:"approval,omitempty"`
	// ControllerUsers are the controllers whose objects inherit their owner's exemptions (a Deployment's
	// PolicyException covers the Pods the ReplicaSet controller creates). Default: kube-controller-manager's
	// controllers.
	ControllerUsers []string `json:"controllerUsers,omitempty"`
	// ExpiryWarning is how long before expiry a used exemption is reported as expiring (default 72h).
	ExpiryWarning string `json:"expiryWarning,omitempty"`

	// Listed are the exemptions the configuration lists (validated by the config package, which reads them from
	// the policy documents' exemptions list).
	Listed []Listed `json:"-"`
	// EmergencyOff refuses emergency PolicyExceptions (the policy documents' emergency_override.enabled: false).
	EmergencyOff bool `json:"-"`
}

// NonExemptable names a policy that no exemption may waive.
type NonExemptable struct {
	Policy string `json:"policy"`
	// ProductionOnly limits the rule to production namespaces.
	ProductionOnly bool `json:"productionOnly,omitempty"`
}

// Approval is the policy documents' exemption_approval and emergency_override governance.
type Approval struct {
	// RequiredApprovers is how many distinct approvers a PolicyException needs (default 1).
	RequiredApprovers int `json:"requiredApprovers,omitempty"`
	// ApproverGroups may approve (default security-team); ApproverUsers too.
	ApproverGroups []string `json:"approverGroups,omitempty"`
	ApproverUsers  []string `json:"approverUsers,omitempty"`
	// EmergencyApprovers is how many an emergency PolicyException needs (default 2).
	EmergencyApprovers int `json:"emergencyApprovers,omitempty"`
}

// Defaults the governance falls back to.
const (
	DefaultMaxDuration   = 30 * 24 * time.Hour
	DefaultExpiryWarning = 72 * time.Hour
	DefaultApproverGroup = "security-team"
)

// DefaultControllerUsers are kube-controller-manager's controllers that create Pods, ReplicaSets and Jobs for their
// owners (with --use-service-account-credentials, as kubeadm and managed clusters run it).
var DefaultControllerUsers = []string{
	"system:serviceaccount:kube-system:replicaset-controller",
	"system:serviceaccount:kube-system:deployment-controller",
	"system:serviceaccount:kube-system:statefulset-controller",
	"system:serviceaccount:kube-system:daemon-set-controller",
	"system:serviceaccount:kube-system:job-controller",
	"system:serviceaccount:kube-system:cronjob-controller",
	"system:serviceaccount:kube-system:replication-controller",
}

// Governance is a validated Config.
type Governance struct {
	annotationGroups, annotationUsers []string
	MaxDuration                       time.Duration
	ExpiryWarning                     time.Duration
	nonExemptable                     map[string]bool // policy → production only
	RequiredApprovers                 int
	EmergencyApprovers                int
	approverGroups, approverUsers     []string
	controllerUsers                   []string
	listed                            []Listed
	// EmergencyOff refuses emergency PolicyExceptions: they are invalid at kubectl apply and exempt nothing.
	EmergencyOff bool
}

// NewGovernance validates c and applies defaults; errors name the field.
func NewGovernance(c Config) (*Governance, error) {
	g := &Governance{
		annotationGroups: c.AnnotationGroups, annotationUsers: c.AnnotationUsers,
		MaxDuration: DefaultMaxDuration, ExpiryWarning: DefaultExpiryWarning,
		nonExemptable:     map[string]bool{},
		RequiredApprovers: 1, EmergencyApprovers: 2,
		approverGroups: []string{DefaultApproverGroup}, approverUsers: c.Approval.ApproverUsers,
		controllerUsers: slices.Clone(DefaultControllerUsers),
		listed:          slices.Clone(c.Listed), EmergencyOff: c.EmergencyOff,
	}
	var err error
	if c.MaxDuration != "" {
		if g.MaxDuration, err = ParseDuration(c.MaxDuration); err != nil {
			return nil, fmt.Errorf("exemptions.maxDuration: %w", err)
		}
	}
	if c.ExpiryWarning != "" {
		if g.ExpiryWarning, err = ParseDuration(c.ExpiryWarning); err != nil {
			return nil, fmt.Errorf("exemptions.expiryWarning: %w", err)
		}
	}
	for i, n := range c.NonExemptable {
		if !policies.ValidName(n.Policy) {
			return nil, fmt.Errorf("exemptions.nonExemptable[%d].policy: %q is not a policy name", i, n.Policy)
		}
		g.nonExemptable[n.Policy] = n.ProductionOnly
	}
	if c.Approval.RequiredApprovers < 0 || c.Approval.EmergencyApprovers < 0 {
		return nil, fmt.Errorf("exemptions.approval: approver counts cannot be negative")
	}
	if c.Approval.RequiredApprovers > 0 {
		g.RequiredApprovers = c.Approval.RequiredApprovers
	}
	if c.Approval.EmergencyApprovers > 0 {
		g.EmergencyApprovers = c.Approval.EmergencyApprovers
	}
	if len(c.Approval.ApproverGroups) > 0 {
		g.approverGroups = c.Approval.ApproverGroups
	}
	if len(c.ControllerUsers) > 0 {
		g.controllerUsers = c.ControllerUsers
	}
	for field, list := range map[string][]string{
		"annotationGroups": g.annotationGroups, "annotationUsers": g.annotationUsers,
		"approval.approverGroups": g.approverGroups, "approval.approverUsers": g.approverUsers,
		"controllerUsers": g.controllerUsers,
	} {
		for i, v := range list {
			if strings.TrimSpace(v) == "" {
				return nil, fmt.Errorf("exemptions.%s[%d]: empty name", field, i)
			}
		}
	}
	return g, nil
}

// NonExemptable reports whether policy may not be exempted for an object in a namespace of that kind.
func (g *Governance) NonExemptable(policy string, production bool) bool {
	productionOnly, ok := g.nonExemptable[policy]
	return ok && (!productionOnly || production)
}

// MayAnnotate reports whether the requester may use annotation exemptions.
func (g *Governance) MayAnnotate(user string, groups []string) bool {
	return slices.Contains(g.annotationUsers, user) || intersects(g.annotationGroups, groups)
}

// MayApprove reports whether the requester may approve PolicyExceptions.
func (g *Governance) MayApprove(user string, groups []string) bool {
	return slices.Contains(g.approverUsers, user) || intersects(g.approverGroups, groups)
}

// IsController reports whether the requester is a controller whose objects inherit their owners' exemptions.
func (g *Governance) IsController(user string) bool { return slices.Contains(g.controllerUsers, user) }

// AnnotationAuthority describes who may use annotation exemptions, for messages.
func (g *Governance) AnnotationAuthority() string {
	var parts []string
	if len(g.annotationGroups) > 0 {
		parts = append(parts, "groups "+strings.Join(g.annotationGroups, ", "))
	}
	if len(g.annotationUsers) > 0 {
		parts = append(parts, "users "+strings.Join(g.annotationUsers, ", "))
	}
	if len(parts) == 0 {
		return "nobody (exemptions.annotationGroups is empty)"
	}
	return strings.Join(parts, " and ")
}

// ApproverAuthority describes who may approve, for messages.
func (g *Governance) ApproverAuthority() string {
	s := "groups " + strings.Join(g.approverGroups, ", ")
	if len(g.approverUsers) > 0 {
		s += " and users " + strings.Join(g.approverUsers, ", ")
	}
	return s
}

func intersects(allowed, have []string) bool {
	for _, h := range have {
		if slices.Contains(allowed, h) {
			return true
		}
	}
	return false
}

// maxDuration bounds parsed durations far below time.Duration's overflow.
const maxDuration = 100 * 365 * 24 * time.Hour

var durationTerm = regexp.MustCompile(`^([0-9]{1,6})(w|d|h|m|s)`)

// ParseDuration reads the durations people write for exemptions: Go's "720h", "90m", plus days and weeks
// ("30d", "2w", "1d12h"). Negative, zero and fractional values are refused.
func ParseDuration(s string) (time.Duration, error) {
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty duration (want e.g. 30d, 72h or 2w)")
	}
	var total time.Duration
	for rest != "" {
		m := durationTerm.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("%q is not a duration (want e.g. 30d, 72h or 2w)", s)
		}
		n, _ := strconv.Atoi(m[1]) // at most 6 digits: cannot fail or overflow
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}[m[2]]
		if time.Duration(n) > maxDuration/unit || total > maxDuration-time.Duration(n)*unit {
			return 0, fmt.Errorf("%q is longer than 100 years", s)
		}
		total += time.Duration(n) * unit
		rest = rest[len(m[0]):]
	}
	if total <= 0 {
		return 0, fmt.Errorf("%q: the duration must be positive", s)
	}
	return total, nil
}
