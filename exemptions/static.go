package exemptions

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/api/v1alpha1"
)

// Static is a Lookup over a fixed set of PolicyExceptions and owners, as `attest policy check` reads them from
// manifest files: the same matching and governance as in the cluster, without one.
type Static struct {
	exceptions map[string][]v1alpha1.PolicyException
	owners     map[string]*metav1.PartialObjectMetadata // namespace/kind/name
}

var _ Lookup = (*Static)(nil)

// NewStatic indexes exceptions by namespace and owners by namespace, kind and name.
func NewStatic(exceptions []v1alpha1.PolicyException, owners []metav1.PartialObjectMetadata) *Static {
	s := &Static{exceptions: map[string][]v1alpha1.PolicyException{}, owners: map[string]*metav1.PartialObjectMetadata{}}
	for _, pe := range exceptions {
		s.exceptions[pe.Namespace] = append(s.exceptions[pe.Namespace], pe)
	}
	for i := range owners {
		o := &owners[i]
		s.owners[o.Namespace+"/"+o.Kind+"/"+o.Name] = o
	}
	return s
}

// Exceptions implements Lookup.
func (s *Static) Exceptions(_ context.Context, namespace string) ([]v1alpha1.PolicyException, error) {
	return s.exceptions[namespace], nil
}

// Owner implements Lookup.
func (s *Static) Owner(_ context.Context, namespace string, ref metav1.OwnerReference) (*metav1.PartialObjectMetadata, error) {
	return s.owners[namespace+"/"+ref.Kind+"/"+ref.Name], nil
}
