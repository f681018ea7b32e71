package gatekeeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	templatesapi "github.com/open-policy-agent/frameworks/constraint/pkg/apis"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// The groups of Gatekeeper's resources.
const (
	TemplateGroup   = "templates.gatekeeper.sh"
	ConstraintGroup = "constraints.gatekeeper.sh"
)

var (
	// ErrNotTemplate: the document is not a ConstraintTemplate.
	ErrNotTemplate = errors.New("not a ConstraintTemplate")
	// ErrNotConstraint: the document is not a Constraint (group constraints.gatekeeper.sh).
	ErrNotConstraint = errors.New("not a Constraint")
	// ErrInvalidTemplate: a ConstraintTemplate lacks what its CRD requires.
	ErrInvalidTemplate = errors.New("invalid ConstraintTemplate")
	// ErrInvalidYAML: the document is not YAML or JSON of an object.
	ErrInvalidYAML = errors.New("invalid yaml")
)

// A Template is a ConstraintTemplate (templates.gatekeeper.sh v1, v1beta1 or v1alpha1), converted to the
// version-independent form Gatekeeper's evaluation library compiles.
type Template struct {
	ct *templates.ConstraintTemplate
}

// Name is metadata.name, which Gatekeeper requires to be the lower-cased constraint kind.
func (t *Template) Name() string { return t.ct.GetName() }

// Kind is the kind of the template's constraints (spec.crd.spec.names.kind).
func (t *Template) Kind() string { return t.ct.Spec.CRD.Spec.Names.Kind }

// A Constraint is an instance of a template's constraint kind (constraints.gatekeeper.sh/v1beta1 or v1alpha1).
type Constraint struct {
	u *unstructured.Unstructured
}

// Kind is the constraint's kind, the kind its template defines.
func (c *Constraint) Kind() string { return c.u.GetKind() }

// Name is metadata.name.
func (c *Constraint) Name() string { return c.u.GetName() }

// Policy is the name ATTEST gives the constraint: "<Kind>/<name>".
func (c *Constraint) Policy() string { return c.u.GetKind() + "/" + c.u.GetName() }

// EnforcementAction is spec.enforcementAction, "deny" when unset.
func (c *Constraint) EnforcementAction() string {
	action, _, _ := unstructured.NestedString(c.u.Object, "spec", "enforcementAction")
	if action == "" {
		return "deny"
	}
	return action
}

var templateScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := templatesapi.AddToScheme(s); err != nil {
		panic(err) // generated registration of the library's own types
	}
	return s
}()

// UnmarshalYAML reads one YAML (or JSON) document into v as gator does: YAML 1.2 scalars ("yes" stays a string) and
// a JSON round trip, so the values are the JSON types Rego and CEL see in the cluster.
func UnmarshalYAML(data []byte, v any) error {
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidYAML, err)
	}
	j, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidYAML, err)
	}
	if err := json.Unmarshal(j, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidYAML, err)
	}
	return nil
}

func parseObject(data []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	if err := UnmarshalYAML(data, u); err != nil {
		return nil, err
	}
	return u, nil
}

// ParseTemplate reads a ConstraintTemplate from YAML or JSON (the first document of a stream).
func ParseTemplate(data []byte) (*Template, error) {
	u, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	return TemplateFrom(u)
}

// TemplateFrom converts a ConstraintTemplate object.
func TemplateFrom(u *unstructured.Unstructured) (*Template, error) {
	gvk := u.GroupVersionKind()
	if gvk.Group != TemplateGroup || gvk.Kind != "ConstraintTemplate" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q", ErrNotTemplate, u.GetAPIVersion(), u.GetKind())
	}
	typed, err := templateScheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown version %q", ErrNotTemplate, u.GetAPIVersion())
	}
	j, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("ConstraintTemplate: %w", err)
	}
	if err := json.Unmarshal(j, typed); err != nil {
		return nil, fmt.Errorf("ConstraintTemplate %s: %w", u.GetName(), err)
	}
	v, ok := typed.(interface {
		ToVersionless() (*templates.ConstraintTemplate, error)
	})
	if !ok {
		return nil, fmt.Errorf("%w: cannot convert %T", ErrNotTemplate, typed)
	}
	ct, err := v.ToVersionless()
	if err != nil {
		return nil, fmt.Errorf("ConstraintTemplate %s: %w", u.GetName(), err)
	}
	// The CRD requires engine and source in each code entry; the drivers assume them (Gatekeeper's k8scel
	// schema dereferences a missing source).
	for i, t := range ct.Spec.Targets {
		for j, c := range t.Code {
			if c.Engine == "" || c.Source == nil || c.Source.Value == nil {
				return nil, fmt.Errorf("%w %s: spec.targets[%d].code[%d]: engine and source are required", ErrInvalidTemplate, u.GetName(), i, j)
			}
		}
	}
	return &Template{ct: ct}, nil
}

// ParseConstraint reads a Constraint from YAML or JSON (the first document of a stream).
func ParseConstraint(data []byte) (*Constraint, error) {
	u, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	return ConstraintFrom(u)
}

// ConstraintFrom takes an object of the group constraints.gatekeeper.sh as a Constraint.
func ConstraintFrom(u *unstructured.Unstructured) (*Constraint, error) {
	if u.GroupVersionKind().Group != ConstraintGroup {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q", ErrNotConstraint, u.GetAPIVersion(), u.GetKind())
	}
	return &Constraint{u: u}, nil
}

// ParseObjects reads every object of a YAML stream as gator does: documents split at "---" lines,
// blank and comment-only lines dropped, empty documents skipped.
func ParseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---") {
		doc = dropBlankAndCommentLines(doc)
		if doc == "" {
			continue
		}
		u, err := parseObject([]byte(doc))
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func dropBlankAndCommentLines(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}
