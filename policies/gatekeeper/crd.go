package gatekeeper

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var crdScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := apiextensions.AddToScheme(s); err != nil {
		panic(err) // generated registration of apiextensions' own types
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// CRD is the CustomResourceDefinition of the template's constraint kind, exactly as Gatekeeper creates it
// (the constraint framework's CreateCRD: group constraints.gatekeeper.sh, the parameters' openAPIV3Schema
// beside Gatekeeper's match and enforcementAction schema, categories constraint and constraints, the status
// subresource), so `kubectl get constraints` lists its constraints and the API server validates their
// parameters.
func (c *Client) CRD(ctx context.Context, t *Template) (*apiextensionsv1.CustomResourceDefinition, error) {
	internal, err := c.cc.CreateCRD(ctx, t.ct)
	if err != nil {
		return nil, fmt.Errorf("template %s: the constraint CRD: %w", t.Name(), err)
	}
	out := &apiextensionsv1.CustomResourceDefinition{}
	if err := crdScheme.Convert(internal, out, nil); err != nil {
		return nil, fmt.Errorf("template %s: the constraint CRD: %w", t.Name(), err)
	}
	out.APIVersion, out.Kind = apiextensionsv1.SchemeGroupVersion.String(), "CustomResourceDefinition"
	return out, nil
}

// CRD is the constraint CRD of a template of the Set (see Client.CRD).
func (s *Set) CRD(ctx context.Context, t *Template) (*apiextensionsv1.CustomResourceDefinition, error) {
	return s.client.CRD(ctx, t)
}

// ValidateTemplate compiles a template alone, as Gatekeeper's webhook does at kubectl apply: Rego or CEL that
// does not compile, a parameters schema that is not a structural schema, a name that is not the lower-cased
// kind, an unknown target. The error is the compiler's message.
func ValidateTemplate(ctx context.Context, t *Template) error {
	c, err := New(Options{})
	if err != nil {
		return err
	}
	if err := c.AddTemplate(ctx, t); err != nil {
		return err
	}
	if _, err := c.CRD(ctx, t); err != nil {
		return err
	}
	return nil
}

// RemoveInventory takes an object out of data.inventory (and a Namespace out of namespaceSelector's cache).
func (s *Set) RemoveInventory(ctx context.Context, obj *unstructured.Unstructured) error {
	if _, err := s.client.cc.RemoveData(ctx, obj); err != nil {
		return fmt.Errorf("inventory %s %s/%s: %w", obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	if obj.GroupVersionKind().GroupKind() == (schema.GroupKind{Kind: "Namespace"}) {
		s.nsMu.Lock()
		delete(s.namespaces, obj.GetName())
		s.nsMu.Unlock()
	}
	return nil
}

// ValidateConstraint checks a constraint of one of the Set's kinds as AddConstraint would (parameters against the
// template's schema, match, enforcementAction), without adding it.
func (s *Set) ValidateConstraint(k *Constraint) error {
	action := util.EnforcementAction(k.EnforcementAction())
	if err := util.ValidateEnforcementAction(action, k.u.Object); err != nil {
		return fmt.Errorf("constraint %s: %w", k.Policy(), err)
	}
	if _, err := k.modeAt(s.ep); err != nil {
		return fmt.Errorf("constraint %s: %w", k.Policy(), err)
	}
	if err := s.client.cc.ValidateConstraint(k.u); err != nil {
		return fmt.Errorf("constraint %s: %w", k.Policy(), err)
	}
	return nil
}
