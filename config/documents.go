package config

import (
	"encoding/json"
	"fmt"

	"github.com/continuums/attest/exemptions"
)

// The policy documents' own configuration blocks, read as the documents write them: the global settings file's
// `policy:` block, .attest/governance.yaml's `governance:` block, and the "Temporary Exemptions" list. Each is
// mapped onto what ATTEST already has; what ATTEST cannot honour is accepted and warned about at load.

// GlobalSettings is the documents' `policy:` block (~/.config/attest/policies.yaml).
type GlobalSettings struct {
	// Enabled false turns every policy off.
	Enabled *bool `json:"enabled,omitempty"`
	// OPAEnabled false turns every Rego policy off (the library and custom Rego; Cedar sets and Gatekeeper
	// constraints stay on).
	OPAEnabled *bool `json:"opa_enabled,omitempty"`
	// GatekeeperEnabled false turns every Gatekeeper constraint off (true, the default, leaves them on).
	// PolicyBundleURL and PolicyBundlePath ask for what is not built yet: a warning at load.
	GatekeeperEnabled *bool  `json:"gatekeeper_enabled,omitempty"`
	PolicyBundleURL   string `json:"policy_bundle_url,omitempty"`
	PolicyBundlePath  string `json:"policy_bundle_path,omitempty"`
	// FailOnViolation false is the global audit mode: every enforced policy only warns.
	FailOnViolation *bool `json:"fail_on_violation,omitempty"`
	// CustomPolicies are inline Rego policies, compiled into the engine with the library.
	CustomPolicies []CustomPolicy `json:"custom_policies,omitempty"`
}

// CustomPolicy is one entry of custom_policies.
type CustomPolicy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Level (organization, team, …) is informational.
	Level    string `json:"level,omitempty"`
	Severity string `json:"severity,omitempty"`
	// RegoCode is the policy's Rego, v0 (`violation[{"msg": msg}] { … }`) or v1.
	RegoCode string `json:"rego_code"`
}

// UnmarshalJSON decodes the block strictly, naming a custom policy's fields with its index.
func (g *GlobalSettings) UnmarshalJSON(b []byte) error {
	switch jsonKind(b) {
	case "object":
	case "array":
		// A list under `policy` is a misspelt `policies`, as it was before the block existed.
		return fieldErrors{`unknown field "policy"`}
	default:
		return fieldErrors{fmt.Sprintf("policy: got %s, want object", jsonKind(b))}
	}
	type plain GlobalSettings
	var raw struct {
		plain
		CustomPolicies json.RawMessage `json:"custom_policies,omitempty"`
	}
	if err := decodeStrict(b, &raw, "policy"); err != nil {
		return err
	}
	*g = GlobalSettings(raw.plain)
	if len(raw.CustomPolicies) > 0 && jsonKind(raw.CustomPolicies) != "null" {
		list, err := decodeList[CustomPolicy](raw.CustomPolicies, "policy.custom_policies")
		if err != nil {
			return err
		}
		g.CustomPolicies = list
	}
	return nil
}

// GovernanceSettings is the documents' `governance:` block (.attest/governance.yaml).
type GovernanceSettings struct {
	// ExemptionApproval maps onto exemptions.approval and exemptions.maxDuration.
	ExemptionApproval *ExemptionApproval `json:"exemption_approval,omitempty"`
	// EmergencyOverride maps onto the emergency PolicyException settings.
	EmergencyOverride *EmergencyOverride `json:"emergency_override,omitempty"`
	// PolicyApproval is the review of policy changes: the git host's job. Accepted; ATTEST enforces nothing for it.
	PolicyApproval *PolicyApproval `json:"policy_approval,omitempty"`
}

// ExemptionApproval is governance.exemption_approval.
type ExemptionApproval struct {
	// RequiredApprovers is exemptions.approval.requiredApprovers.
	RequiredApprovers *int `json:"required_approvers,omitempty"`
	// RequiredTeams are exemptions.approval.approverGroups: the groups whose members approve.
	RequiredTeams []string `json:"required_teams,omitempty"`
	// MaxDuration is exemptions.maxDuration (30d, 720h, 2w).
	MaxDuration string `json:"max_duration,omitempty"`
}

// EmergencyOverride is governance.emergency_override.
type EmergencyOverride struct {
	// Enabled false refuses emergency PolicyExceptions.
	Enabled *bool `json:"enabled,omitempty"`
	// RequiredApprovers is exemptions.approval.emergencyApprovers.
	RequiredApprovers *int `json:"required_approvers,omitempty"`
	// AuditTrail true is what ATTEST always does; false cannot be honoured (a warning).
	AuditTrail *bool `json:"audit_trail,omitempty"`
}

// PolicyApproval is governance.policy_approval.
type PolicyApproval struct {
	RequiredReviewers *int     `json:"required_reviewers,omitempty"`
	RequiredTeams     []string `json:"required_teams,omitempty"`
}

// UnmarshalJSON decodes the block strictly, naming fields from the top of the file.
func (g *GovernanceSettings) UnmarshalJSON(b []byte) error {
	if k := jsonKind(b); k != "object" {
		return fieldErrors{fmt.Sprintf("governance: got %s, want object", k)}
	}
	type plain GovernanceSettings
	var p plain
	if err := decodeStrict(b, &p, "governance"); err != nil {
		return err
	}
	*g = GovernanceSettings(p)
	return nil
}

// ExemptionsSection is the `exemptions:` key, which means two things: a mapping is ATTEST's exemption governance
// (annotationGroups, maxDuration, approval, …); a list is the documents' "Temporary Exemptions".
type ExemptionsSection struct {
	exemptions.Config
	// List is the documents' list of temporary exemptions.
	List []ListedExemption
	// hasMap and hasList say which form the file wrote (files override each other by form).
	hasMap, hasList bool
}

// ListedExemption is one entry of the documents' exemptions list.
type ListedExemption struct {
	PolicyName        string `json:"policy_name"`
	ResourceKind      string `json:"resource_kind"`
	ResourceName      string `json:"resource_name"`
	ResourceNamespace string `json:"resource_namespace"`
	Reason            string `json:"reason"`
	// ExpiresAt is an RFC 3339 time, at most the governance maximum ahead.
	ExpiresAt  string `json:"expires_at"`
	ApprovedBy string `json:"approved_by"`
}

// UnmarshalJSON tells the two forms apart by the kind of the value.
func (e *ExemptionsSection) UnmarshalJSON(b []byte) error {
	switch k := jsonKind(b); k {
	case "object":
		var c exemptions.Config
		if err := decodeStrict(b, &c, "exemptions"); err != nil {
			return err
		}
		*e = ExemptionsSection{Config: c, hasMap: true}
	case "array":
		list, err := decodeList[ListedExemption](b, "exemptions")
		if err != nil {
			return err
		}
		*e = ExemptionsSection{List: list, hasList: true}
	case "null":
	default:
		return fieldErrors{fmt.Sprintf("exemptions: got %s, want a mapping (ATTEST's exemption governance: annotationGroups, maxDuration, approval, …) or a list (temporary exemptions: policy_name, resource_kind, resource_name, resource_namespace, reason, expires_at, approved_by)", k)}
	}
	return nil
}

// MarshalJSON writes the form that was read.
func (e ExemptionsSection) MarshalJSON() ([]byte, error) {
	if e.hasList {
		return json.Marshal(e.List)
	}
	return json.Marshal(e.Config)
}

// ComplianceSection is the `compliance:` key: one block per framework.
type ComplianceSection map[string]ComplianceFramework

// UnmarshalJSON decodes each framework strictly, naming fields with the framework and list indexes.
func (c *ComplianceSection) UnmarshalJSON(b []byte) error {
	if k := jsonKind(b); k != "object" {
		if k == "null" {
			return nil
		}
		return fieldErrors{fmt.Sprintf("compliance: got %s, want object", k)}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fieldErrors{fmt.Sprintf("compliance: %v", err)}
	}
	out := make(ComplianceSection, len(raw))
	for fw, r := range raw {
		prefix := "compliance." + fw
		if k := jsonKind(r); k != "object" {
			return fieldErrors{fmt.Sprintf("%s: got %s, want object", prefix, k)}
		}
		type plain ComplianceFramework
		var f struct {
			plain
			Controls json.RawMessage `json:"controls,omitempty"`
		}
		if err := decodeStrict(r, &f, prefix); err != nil {
			return err
		}
		framework := ComplianceFramework(f.plain)
		if len(f.Controls) > 0 && jsonKind(f.Controls) != "null" {
			controls, err := decodeControls(f.Controls, prefix+".controls")
			if err != nil {
				return err
			}
			framework.Controls = controls
		}
		out[fw] = framework
	}
	*c = out
	return nil
}

// decodeControls reads a controls list whose entries are control IDs (the documents: `controls: [CC6.1]`) or
// mappings of a control to a policy (`{control: CC6.1, policy: no-privileged}`).
func decodeControls(b []byte, prefix string) ([]ComplianceMapping, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fieldErrors{fmt.Sprintf("%s: got %s, want array", prefix, jsonKind(b))}
	}
	out := make([]ComplianceMapping, len(raw))
	for i, r := range raw {
		field := fmt.Sprintf("%s[%d]", prefix, i)
		switch jsonKind(r) {
		case "string":
			var id string
			_ = json.Unmarshal(r, &id)
			out[i] = ComplianceMapping{Control: id, idOnly: true}
		case "object":
			if err := decodeStrict(r, &out[i], field); err != nil {
				return nil, err
			}
		default:
			return nil, fieldErrors{fmt.Sprintf("%s: got %s, want a control ID or {control, policy, description}", field, jsonKind(r))}
		}
	}
	return out, nil
}
