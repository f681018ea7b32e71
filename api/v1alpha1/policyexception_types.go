package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations the webhook owns on a PolicyException: whatever a user writes there is overwritten.
const (
	// AnnotationCreatedBy records the authenticated user who created the exception.
	AnnotationCreatedBy = "policy.attest.continuu.ms/created-by"
	// AnnotationApprove is how an approver asks to approve (`attest policy exempt approve`); its value is the
	// comment. The webhook turns it into an entry of status.approvals from the approver's userInfo and removes it.
	AnnotationApprove = "policy.attest.continuu.ms/approve"
)

// PolicyException exempts matching objects in its namespace from named policies until it expires, once enough
// approvers have approved it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pex;exceptions,categories=attest
// +kubebuilder:printcolumn:name="Policies",type=string,JSONPath=`.spec.policies`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Approvals",type=integer,JSONPath=`.status.approvalCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicyException struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicyExceptionSpec `json:"spec"`
	// Status is written by the ATTEST webhook only (it is not a subresource, so the webhook can own it on every
	// write); values typed by users are replaced.
	// +optional
	Status PolicyExceptionStatus `json:"status,omitempty"`
}

// PolicyExceptionSpec says which policies are waived for which objects, why, and until when.
type PolicyExceptionSpec struct {
	// Policies are the policy names waived.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	Policies []string `json:"policies"`
	// Targets select the objects in this namespace; an object matching any target is covered, and so are the
	// objects its controllers create (a Deployment's ReplicaSets and Pods).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Targets []ExceptionTarget `json:"targets"`
	// ExpiresAt ends the exception (RFC 3339); at most the governance maximum (default 30 days) after creation.
	ExpiresAt metav1.Time `json:"expiresAt"`
	// Reason says why the exception is needed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
	// ApprovedBy is the policy documents' approver field, kept for display only: approvals count only when
	// recorded by the webhook from an approver's own request.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ApprovedBy string `json:"approvedBy"`
	// Ticket links the change request.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Ticket string `json:"ticket,omitempty"`
	// Emergency marks an emergency override, which needs the governance's emergency number of approvers.
	// +optional
	Emergency bool `json:"emergency,omitempty"`
}

// ExceptionTarget selects objects by kind, name and labels; every field set must match.
// +kubebuilder:validation:XValidation:rule="has(self.kinds) || has(self.names) || has(self.selector)",message="a target needs kinds, names or a selector"
type ExceptionTarget struct {
	// Kinds are object kinds (Pod, Deployment, CronJob, …); empty means any.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	Kinds []string `json:"kinds,omitempty"`
	// Names are object names or globs (`web-*`); empty means any. They match in the exception's namespace only.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	Names []string `json:"names,omitempty"`
	// Selector matches the object's labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Namespace, when set, must be the exception's own; it exists so that a target naming another namespace is
	// rejected instead of silently ignored.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Approval is one approver's consent, recorded by the webhook from the approver's authenticated request.
type Approval struct {
	User   string      `json:"user"`
	Groups []string    `json:"groups,omitempty"`
	Time   metav1.Time `json:"time"`
	// +optional
	Comment string `json:"comment,omitempty"`
	// SpecHash is the hash of the spec approved; an approval of an older spec does not count.
	SpecHash string `json:"specHash"`
}

// PolicyExceptionStatus is the governance state the webhook records.
type PolicyExceptionStatus struct {
	// Phase is Pending until enough approvals, then Approved; expiry is judged at each admission.
	// +optional
	// +kubebuilder:validation:Enum=Pending;Approved
	Phase string `json:"phase,omitempty"`
	// +optional
	Approvals []Approval `json:"approvals,omitempty"`
	// +optional
	ApprovalCount int `json:"approvalCount,omitempty"`
	// SpecHash is the hash of the current spec.
	// +optional
	SpecHash string `json:"specHash,omitempty"`
}

// PolicyExceptionList is a list of PolicyExceptions.
// +kubebuilder:object:root=true
type PolicyExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyException `json:"items"`
}
