package policies

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Request is input.request: who asks for what, when. The admission pipeline uses it as its own request type.
type Request struct {
	UID         string
	Operation   string
	Group       string
	Version     string
	Kind        string
	SubResource string
	Namespace   string
	Name        string
	DryRun      bool
	Username    string
	Groups      []string
	// TimestampNS is the request time; policies read it instead of the clock.
	TimestampNS int64
}

// Namespace is input.namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Production says whether config marks the namespace as production (by name or label selector).
	Production bool
}

// Container is one element of input.containers.
type Container struct {
	Path    string
	PodPath string
	Type    string
	Name    string
	Image   string
	// Fields is the container object; securityContext and resources are taken from it.
	Fields map[string]any
}

// Input is everything a policy sees except its own parameters.
type Input struct {
	Request     Request
	Resource    map[string]any
	OldResource map[string]any
	Namespace   Namespace
	Containers  []Container
	// Images holds the facts about each image as written in the object (see the README's input contract).
	Images map[string]map[string]any
}

// Document is an Input converted once to Rego values, shared by every policy of one admission.
type Document struct {
	terms [][2]*ast.Term
}

// NewDocument converts in to Rego values; the cost is paid once per admission, not once per policy.
func NewDocument(in Input) (*Document, error) {
	resource, err := toTerm(in.Resource)
	if err != nil {
		return nil, fmt.Errorf("input.resource: %w", err)
	}
	old, err := toTerm(in.OldResource)
	if err != nil {
		return nil, fmt.Errorf("input.old_resource: %w", err)
	}
	containers := make([]*ast.Term, len(in.Containers))
	for i, c := range in.Containers {
		sc, err := toTerm(c.Fields["securityContext"])
		if err != nil {
			return nil, fmt.Errorf("%s.securityContext: %w", c.Path, err)
		}
		res, err := toTerm(c.Fields["resources"])
		if err != nil {
			return nil, fmt.Errorf("%s.resources: %w", c.Path, err)
		}
		containers[i] = ast.ObjectTerm(
			str("path", c.Path), str("pod_path", c.PodPath), str("type", c.Type),
			str("name", c.Name), str("image", c.Image),
			[2]*ast.Term{ast.InternedTerm("securityContext"), sc},
			[2]*ast.Term{ast.InternedTerm("resources"), res},
		)
	}
	images, err := toTerm(in.Images)
	if err != nil {
		return nil, fmt.Errorf("input.images: %w", err)
	}
	r := in.Request
	groups := make([]*ast.Term, len(r.Groups))
	for i, g := range r.Groups {
		groups[i] = ast.StringTerm(g)
	}
	request := ast.ObjectTerm(
		str("uid", r.UID), str("operation", r.Operation),
		[2]*ast.Term{ast.InternedTerm("kind"), ast.ObjectTerm(str("group", r.Group), str("version", r.Version), str("kind", r.Kind))},
		str("subresource", r.SubResource), str("namespace", r.Namespace), str("name", r.Name),
		[2]*ast.Term{ast.InternedTerm("dry_run"), ast.BooleanTerm(r.DryRun)},
		[2]*ast.Term{ast.InternedTerm("user"), ast.ObjectTerm(str("username", r.Username), [2]*ast.Term{ast.InternedTerm("groups"), ast.ArrayTerm(groups...)})},
		[2]*ast.Term{ast.InternedTerm("timestamp_ns"), ast.IntNumberTerm(int(r.TimestampNS))},
	)
	ns := in.Namespace
	namespace := ast.ObjectTerm(
		str("name", ns.Name),
		[2]*ast.Term{ast.InternedTerm("labels"), stringMap(ns.Labels)},
		[2]*ast.Term{ast.InternedTerm("annotations"), stringMap(ns.Annotations)},
		[2]*ast.Term{ast.InternedTerm("production"), ast.BooleanTerm(ns.Production)},
	)
	return &Document{terms: [][2]*ast.Term{
		{ast.InternedTerm("request"), request},
		{ast.InternedTerm("resource"), resource},
		{ast.InternedTerm("old_resource"), old},
		{ast.InternedTerm("namespace"), namespace},
		{ast.InternedTerm("containers"), ast.ArrayTerm(containers...)},
		{ast.InternedTerm("images"), images},
	}}, nil
}

// withParams is the full input of one policy: the shared document plus that policy's parameters.
func (d *Document) withParams(params *ast.Term) ast.Value {
	terms := make([][2]*ast.Term, 0, len(d.terms)+1)
	terms = append(terms, d.terms...)
	terms = append(terms, [2]*ast.Term{ast.InternedTerm("params"), params})
	return ast.NewObject(terms...)
}

// ParamsTerm converts effective parameters once, when configuration loads, not on every request.
func ParamsTerm(params map[string]any) (*ast.Term, error) {
	if params == nil {
		params = map[string]any{}
	}
	return toTerm(params)
}

// toTerm converts JSON-shaped Go values (what decoding an object yields) to Rego terms. OPA's InterfaceToValue
// handles those directly but round-trips anything else (such as the typed images map) through encoding/json,
// which costs more than the rest of an admission, so typed maps are unpacked here.
func toTerm(v any) (*ast.Term, error) {
	switch x := v.(type) {
	case nil:
		return ast.NullTerm(), nil
	case map[string]any:
		if x == nil {
			return ast.NullTerm(), nil
		}
	case map[string]map[string]any:
		if x == nil {
			return ast.NullTerm(), nil
		}
		terms := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			t, err := toTerm(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			terms = append(terms, [2]*ast.Term{ast.StringTerm(k), t})
		}
		return ast.ObjectTerm(terms...), nil
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(val), nil
}

func str(k, v string) [2]*ast.Term {
	return [2]*ast.Term{ast.InternedTerm(k), ast.StringTerm(v)}
}

func stringMap(m map[string]string) *ast.Term {
	terms := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		terms = append(terms, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	return ast.ObjectTerm(terms...)
}
