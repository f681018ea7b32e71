package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Policy sets one policy's mode, scope, rollout and parameters cluster-wide, or defines a custom policy in Rego.
// Its name is the policy's name.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=attest
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Enforce-After",type=string,format=date-time,JSONPath=`.spec.enforceAfter`
// +kubebuilder:printcolumn:name="Valid",type=boolean,JSONPath=`.status.valid`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicySpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// PolicySpec is everything a platform team tunes about one policy.
type PolicySpec struct {
	// Mode is enforce (deny), audit (warn) or off.
	// +optional
	// +kubebuilder:validation:Enum=enforce;audit;off
	Mode string `json:"mode,omitempty"`
	// Parameters override the policy's defaults; they must match its parameter schema.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Parameters *apiextensionsv1.JSON `json:"parameters,omitempty"`
	// EnforceAfter keeps an enforcing policy in audit until this time; warnings say from when it will deny.
	// +optional
	EnforceAfter *metav1.Time `json:"enforceAfter,omitempty"`
	// ExistingWorkloads audit: on UPDATE, a violation already present in the old object is reported, not denied.
	// +optional
	// +kubebuilder:validation:Enum=audit;enforce
	ExistingWorkloads string `json:"existingWorkloads,omitempty"`
	// Match limits where the policy applies.
	// +optional
	Match *Match `json:"match,omitempty"`
	// Mutate applies the policy's patch rule on the mutating path.
	// +optional
	Mutate bool `json:"mutate,omitempty"`
	// Rego defines a custom policy (pure: no http.send, no time.now_ns).
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	Rego string `json:"rego,omitempty"`
	// Cedar defines a custom policy as a Cedar policy set (Cedar for Kubernetes' admission model: forbid denies,
	// what no forbid matches is admitted); validated against `attest policy cedar-schema`. Not with rego.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	Cedar string `json:"cedar,omitempty"`
}

// Match scopes a policy, as the policy documents' constraints do; excludedNamespaces wins over namespaces.
type Match struct {
	// +optional
	// +listType=set
	Kinds []string `json:"kinds,omitempty"`
	// Namespaces (globs) the policy applies in; empty means all.
	// +optional
	// +listType=set
	Namespaces []string `json:"namespaces,omitempty"`
	// ExcludedNamespaces (globs) the policy never applies in.
	// +optional
	// +listType=set
	ExcludedNamespaces []string `json:"excludedNamespaces,omitempty"`
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// +optional
	ObjectSelector *metav1.LabelSelector `json:"objectSelector,omitempty"`
}

// PolicyStatus reports whether ATTEST accepted the policy and what it applies.
type PolicyStatus struct {
	// +optional
	Valid bool `json:"valid,omitempty"`
	// +optional
	Ready bool `json:"ready,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	EffectiveParameters *apiextensionsv1.JSON `json:"effectiveParameters,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// PolicyList is a list of Policies.
// +kubebuilder:object:root=true
type PolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Policy `json:"items"`
}

// PolicyConfig contributes parameters to one policy; list parameters from several PolicyConfigs are merged.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=attest
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicyConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicyConfigSpec `json:"spec"`
	// +optional
	Status PolicyConfigStatus `json:"status,omitempty"`
}

// PolicyConfigSpec names the policy and the parameters contributed.
type PolicyConfigSpec struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`
	Policy string `json:"policy"`
	// +kubebuilder:pruning:PreserveUnknownFields
	Parameters *apiextensionsv1.JSON `json:"parameters"`
}

// PolicyConfigStatus reports conflicts with other PolicyConfigs.
type PolicyConfigStatus struct {
	// +optional
	Valid bool `json:"valid,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// PolicyConfigList is a list of PolicyConfigs.
// +kubebuilder:object:root=true
type PolicyConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyConfig `json:"items"`
}
