package policies_test

import (
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

// TestPolicyNames: a policy is named as a Rego policy (a DNS-1123 label) or a Gatekeeper constraint
// ("<Kind>/<name>"), and by nothing else; exemptions, config and reports take their names from ValidName.
func TestPolicyNames(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"no-privileged", true},
		{"a", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"K8sRequiredLabels/must-have-owner", true},
		{"k8srequiredlabels/must-have-owner", true},
		{"K8sPSP-Host/x", true},
		{"K8sRequiredLabels/owner.example.com", true},
		{"K/" + strings.Repeat("a", 253), true},
		{"K/" + strings.Repeat("a", 254), false},
		{strings.Repeat("K", 63) + "/x", true},
		{strings.Repeat("K", 64) + "/x", false},
		{"", false},
		{"No-Privileged", false},
		{"no_privileged", false},
		{"-no", false},
		{"no-", false},
		{"/must-have-owner", false},
		{"K8sRequiredLabels/", false},
		{"K8sRequiredLabels/Must-Have", false},
		{"K8sRequiredLabels/must have", false},
		{"K8sRequiredLabels/a/b", false},
		{"8sRequiredLabels/x", false},
		{"K8s-/x", false},
		{"K8sRequiredLabels/x.", false},
		{"K8sRequiredLabels/x..y", false},
		{"true", true},
		{"K8sRequiredLabels/x\n", false},
	}
	for _, tt := range tests {
		if got := policies.ValidName(tt.name); got != tt.want {
			t.Errorf("policies.ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
