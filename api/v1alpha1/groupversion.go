// Package v1alpha1 holds ATTEST's custom resources in group policy.attest.continuu.ms: PolicyException and
// PolicyExceptionDraft (namespaced),
// Policy and PolicyConfig (cluster-scoped). The CRD YAML under manifests/crds is generated from these types
// (`make generate`), with OpenAPI and CEL validation taken from the markers here.
// +kubebuilder:object:generate=true
// +groupName=policy.attest.continuu.ms
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is policy.attest.continuu.ms/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "policy.attest.continuu.ms", Version: "v1alpha1"}

// AddToScheme registers the types with a scheme (clients, caches, decoders).
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&PolicyException{}, &PolicyExceptionList{},
		&Policy{}, &PolicyList{},
		&PolicyConfig{}, &PolicyConfigList{},
		&PolicyExceptionDraft{}, &PolicyExceptionDraftList{},
		&PolicySource{}, &PolicySourceList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
