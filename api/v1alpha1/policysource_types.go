package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicySource is a signed policy bundle in an OCI registry that `attest serve` pulls, verifies against a trust
// policy, checks (compile, tests) and loads, and pulls again every interval. On any failure the last good bundle
// stays, and the status says why. Its policies are configured by Policy and PolicyConfig like any other.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=attest
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.digest`
// +kubebuilder:printcolumn:name="Signer",type=string,JSONPath=`.status.signer`
// +kubebuilder:printcolumn:name="Last-Sync",type=date,JSONPath=`.status.lastSync`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicySource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicySourceSpec `json:"spec"`
	// +optional
	Status PolicySourceStatus `json:"status,omitempty"`
}

// PolicySourceSpec names the bundle and who must have signed it.
type PolicySourceSpec struct {
	// OCI is the bundle artifact's reference, a tag or a digest (registry.company.com/policies/acme:prod).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	OCI string `json:"oci"`
	// Interval is how often the reference is resolved again (default 5m, at least 10s).
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// TrustPolicy names the trust policy of the configuration's trust section whose authorities must have signed
	// the bundle; it must be the one covering OCI. An unsigned bundle never loads.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	TrustPolicy string `json:"trustPolicy"`
	// PullSecret is a kubernetes.io/dockerconfigjson Secret with the registry's credentials.
	// +optional
	PullSecret *SecretReference `json:"pullSecret,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// PolicySourceStatus is what ATTEST made of the source: the bundle loaded (the last good one) and the last sync.
type PolicySourceStatus struct {
	// Digest is the loaded bundle artifact's digest; empty before one loaded.
	// +optional
	Digest string `json:"digest,omitempty"`
	// Signer is who signed the loaded bundle: "sha256:<key id>" or "<subject> (<issuer>)".
	// +optional
	Signer string `json:"signer,omitempty"`
	// Revision is the loaded bundle's .manifest revision.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Policies are the loaded bundle's policy names.
	// +optional
	Policies []string `json:"policies,omitempty"`
	// LastSync is when the source was last tried; LastSuccess when it last verified and checked.
	// +optional
	LastSync *metav1.Time `json:"lastSync,omitempty"`
	// +optional
	LastSuccess *metav1.Time `json:"lastSuccess,omitempty"`
	// ObservedGeneration is the spec generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (the last sync verified and checked the bundle; reason loaded, unchanged, untrusted,
	// unavailable, refused or invalid, and the message why).
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PolicySourceList is a list of PolicySources.
// +kubebuilder:object:root=true
type PolicySourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicySource `json:"items"`
}
