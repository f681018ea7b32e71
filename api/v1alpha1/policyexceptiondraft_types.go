package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels the background audit keeps on a PolicyExceptionDraft, so drafts can be selected without reading them.
const (
	// LabelPolicy names the policy the draft would exempt from.
	LabelPolicy = "policy.attest.continuu.ms/policy"
	// LabelValidUntil is when the exception the draft suggests would expire (UTC, 20261231T235959Z: a label value
	// cannot hold RFC 3339's colons).
	LabelValidUntil = "policy.attest.continuu.ms/valid-until"
	// LabelWorkloadLastSeen is when the audit last found the workload violating the policy (same format).
	LabelWorkloadLastSeen = "policy.attest.continuu.ms/workload-last-seen"
	// LabelPromoted names the PolicyException `attest policy exempt promote` made of the draft.
	LabelPromoted = "policy.attest.continuu.ms/promoted"
	// LabelTimeFormat is the time format of the draft labels.
	LabelTimeFormat = "20060102T150405Z"
)

// PolicyExceptionDraft is an exception the background audit suggests for a workload that already violated a
// policy when that policy was enabled, moved to enforce or given an enforceAfter. It exempts nothing: `attest
// policy exempt promote` turns it into a PolicyException, which then needs the usual approvals. The audit
// refreshes it while the workload still violates the policy and removes it once the workload is gone, compliant
// or exempted.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pexd;drafts,categories=attest
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.target.kinds[0]`
// +kubebuilder:printcolumn:name="Workload",type=string,JSONPath=`.spec.target.names[0]`
// +kubebuilder:printcolumn:name="Valid-Until",type=string,format=date-time,JSONPath=`.spec.validUntil`
// +kubebuilder:printcolumn:name="Last-Seen",type=string,format=date-time,JSONPath=`.spec.lastSeen`
type PolicyExceptionDraft struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicyExceptionDraftSpec `json:"spec"`
}

// PolicyExceptionDraftSpec is the exception suggested: one policy, one workload, and what the audit found.
type PolicyExceptionDraftSpec struct {
	// Policy is the policy the workload violates.
	// +kubebuilder:validation:MinLength=1
	Policy string `json:"policy"`
	// Target is the workload, by kind and name, in the draft's namespace (its Pods follow it).
	Target ExceptionTarget `json:"target"`
	// Violations are the audit's messages, in the webhook's format.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Violations []string `json:"violations,omitempty"`
	// Reason says why the draft was written; promote uses it unless given another.
	Reason string `json:"reason"`
	// EnforceAfter is the policy's enforceAfter when the draft was written, if it had one.
	// +optional
	EnforceAfter *metav1.Time `json:"enforceAfter,omitempty"`
	// ValidUntil is when the suggested exception would expire: the governance's maximum duration from when the
	// draft was written.
	ValidUntil metav1.Time `json:"validUntil"`
	// LastSeen is when the audit last found the workload violating the policy.
	LastSeen metav1.Time `json:"lastSeen"`
}

// PolicyExceptionDraftList is a list of PolicyExceptionDrafts.
// +kubebuilder:object:root=true
type PolicyExceptionDraftList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyExceptionDraft `json:"items"`
}
