package cedar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// A customKind is the entity type of one served version of a CustomResourceDefinition.
type customKind struct {
	et    types.EntityType
	gk    schema.GroupKind
	shape *shape
}

// UseCustomKinds makes the schema that Validate, policy evaluation, KindOf and SchemaText use the built-in kinds
// plus an entity type for every served version of crds (EntityType(group, version, kind)): apiVersion, kind,
// metadata as meta::v1::ObjectMeta, and the fields the version's openAPIV3Schema declares (see customShape).
// A CRD that cannot be converted is left out and named in skipped, with the field at fault; the others are
// used. err is set only when no schema could be built: the schema in use then stays as it was. No CRDs (nil)
// restores the built-in schema exactly. Safe for concurrent use with evaluation and validation.
func UseCustomKinds(crds []apiextensionsv1.CustomResourceDefinition) (skipped []error, err error) {
	b, err := theBuiltins()
	if err != nil {
		return nil, err
	}
	if len(crds) == 0 {
		s, err := buildSchemaOnce()
		if err != nil {
			return nil, err
		}
		current.Store(s)
		installed.Add(1)
		return nil, nil
	}
	custom, skipped := b.customKinds(crds)
	s, err := b.schema(custom)
	if err != nil {
		return skipped, fmt.Errorf("the Cedar schema with %d custom kinds: %w", len(custom), err)
	}
	current.Store(s)
	installed.Add(1)
	return skipped, nil
}

func buildSchemaOnce() (*kindSchema, error) {
	buildSchemaMu.Do(func() { builtSchema, buildErr = buildSchema() })
	return builtSchema, buildErr
}

// cedarIdent is what a Cedar name part may be; reserved are the words Cedar's grammars keep for themselves.
var (
	cedarIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reserved   = map[string]bool{"true": true, "false": true, "if": true, "then": true, "else": true, "in": true, "is": true,
		"like": true, "has": true, "__cedar": true, "permit": true, "forbid": true, "when": true, "unless": true}
	// ownNamespaces hold the fixed part of the schema: no custom kind may be declared in them.
	ownNamespaces = map[string]bool{"k8s": true, "k8s::admission": true, "attest": true, "meta::v1": true}
	// attrName is a field name the schema can quote safely (Kubernetes field names are far narrower).
	attrName = regexp.MustCompile(`^[A-Za-z0-9_.$@/:+-]+$`)
)

// customKinds converts every served version of crds, in a stable order; CRDs that cannot be converted are
// returned as errors instead, each naming the CRD (and version and field where one is at fault).
func (b *builtinKinds) customKinds(crds []apiextensionsv1.CustomResourceDefinition) ([]customKind, []error) {
	sorted := make([]*apiextensionsv1.CustomResourceDefinition, len(crds))
	for i := range crds {
		sorted[i] = &crds[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	taken := map[types.EntityType]string{}
	var out []customKind
	var skipped []error
	for _, crd := range sorted {
		kinds, err := b.crdKinds(crd, taken)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, err))
			continue
		}
		for _, k := range kinds {
			taken[k.et] = crd.Name
		}
		out = append(out, kinds...)
	}
	return out, skipped
}

func (b *builtinKinds) crdKinds(crd *apiextensionsv1.CustomResourceDefinition, taken map[types.EntityType]string) ([]customKind, error) {
	group, kind := crd.Spec.Group, crd.Spec.Names.Kind
	if !cedarIdent.MatchString(kind) || reserved[kind] {
		return nil, fmt.Errorf("spec.names.kind %q is not a Cedar identifier", kind)
	}
	if group == "" {
		return nil, errors.New("spec.group is empty")
	}
	for _, label := range strings.Split(groupNamespace(group), "::") {
		if !cedarIdent.MatchString(label) || reserved[label] {
			return nil, fmt.Errorf("spec.group %q: %q is not a Cedar identifier", group, label)
		}
	}
	var out []customKind
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if !v.Served {
			continue
		}
		if !cedarIdent.MatchString(ident(v.Name)) || reserved[ident(v.Name)] {
			return nil, fmt.Errorf("version %q is not a Cedar identifier", v.Name)
		}
		et := EntityType(group, v.Name, kind)
		ns, _ := splitName(string(et))
		switch {
		case ownNamespaces[ns]:
			return nil, fmt.Errorf("version %s: %s is in a namespace of ATTEST's own schema", v.Name, et)
		case b.kinds[et] != nil:
			return nil, fmt.Errorf("version %s: %s is a built-in kind", v.Name, et)
		case b.ss.records[string(et)] != nil:
			return nil, fmt.Errorf("version %s: %s is the name of a built-in type", v.Name, et)
		case taken[et] != "":
			return nil, fmt.Errorf("version %s: %s is already the entity type of CustomResourceDefinition %s", v.Name, et, taken[et])
		}
		s := &shape{kind: kindRecord, name: string(et), fields: map[string]*field{}}
		if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
			top, err := customShape(v.Schema.OpenAPIV3Schema, "", 0)
			if err != nil {
				return nil, fmt.Errorf("version %s: openAPIV3Schema%w", v.Name, err)
			}
			if top != nil && top.kind == kindRecord {
				s.fields = top.fields
			}
		}
		// What every object has, whatever the CRD declares for it: the same as a built-in kind's.
		s.fields["apiVersion"] = &field{s: stringShape}
		s.fields["kind"] = &field{s: stringShape}
		s.fields["metadata"] = &field{s: b.meta}
		out = append(out, customKind{et: et, gk: schema.GroupKind{Group: group, Kind: kind}, shape: s})
	}
	return out, nil
}

// customShape is the Cedar shape of an openAPIV3Schema node (path is its place, for errors), nil for a node
// left out of the schema: a value Cedar cannot type (x-kubernetes-preserve-unknown-fields or no type, an object
// with neither properties nor string-valued additionalProperties, an array without items). Left out, a field
// cannot be named by a validated policy and is not converted. string → String, integer → Long, number → String
// (Cedar has no floating point; written as JSON writes it), boolean → Bool, x-kubernetes-int-or-string → String,
// array → Set, object with properties → record (required ones not optional), object with additionalProperties of
// strings (or string arrays) → the set of key-value records label maps are.
func customShape(p *apiextensionsv1.JSONSchemaProps, path string, depth int) (*shape, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested more than %d levels deep", path, maxDepth)
	}
	if p.Ref != nil {
		return nil, fmt.Errorf("%s: $ref is not allowed in a CustomResourceDefinition schema", path)
	}
	if p.XIntOrString {
		return stringShape, nil
	}
	switch p.Type {
	case "string":
		return stringShape, nil
	case "integer":
		return longShape, nil
	case "number":
		return stringShape, nil
	case "boolean":
		return boolShape, nil
	case "array":
		if p.Items == nil || p.Items.Schema == nil {
			return nil, nil
		}
		e, err := customShape(p.Items.Schema, path+"[]", depth+1)
		if err != nil || e == nil {
			return nil, err
		}
		return &shape{kind: kindSet, elem: e}, nil
	case "object", "":
		if len(p.Properties) > 0 {
			s := &shape{kind: kindRecord, fields: map[string]*field{}}
			names := make([]string, 0, len(p.Properties))
			for n := range p.Properties {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if !attrName.MatchString(n) {
					return nil, fmt.Errorf("%s: property %q: a name ATTEST cannot declare in Cedar", path, n)
				}
				ps := p.Properties[n]
				fs, err := customShape(&ps, path+"."+n, depth+1)
				if err != nil {
					return nil, err
				}
				if fs != nil {
					s.fields[n] = &field{s: fs}
				}
			}
			for _, n := range p.Required {
				if f := s.fields[n]; f != nil {
					f.required = true
				}
			}
			if len(s.fields) == 0 {
				return nil, nil
			}
			return s, nil
		}
		if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
			e, err := customShape(p.AdditionalProperties.Schema, path+".*", depth+1)
			if err != nil || e == nil {
				return nil, err
			}
			switch {
			case e.kind == kindString:
				return &shape{kind: kindKeyValue}, nil
			case e.kind == kindSet && e.elem.kind == kindString:
				return &shape{kind: kindKeyValueSlice}, nil
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%s: unknown type %q (want string, integer, number, boolean, array or object)", path, p.Type)
}

// ReadCRDs reads the CustomResourceDefinitions (apiextensions.k8s.io/v1) of a manifest file, YAML (several
// documents) or JSON; name is the file, for errors. Other kinds of objects in the file are ignored, so a
// directory of manifests can be given whole.
func ReadCRDs(name string, data []byte) ([]apiextensionsv1.CustomResourceDefinition, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []apiextensionsv1.CustomResourceDefinition
	for doc := 1; ; doc++ {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if raw == nil {
			continue
		}
		kind, _ := raw["kind"].(string)
		apiVersion, _ := raw["apiVersion"].(string)
		if kind == "List" {
			return nil, fmt.Errorf("%s: document %d: a List: give the CustomResourceDefinitions as separate documents", name, doc)
		}
		if kind != "CustomResourceDefinition" {
			continue
		}
		if apiVersion != apiextensionsv1.SchemeGroupVersion.String() {
			return nil, fmt.Errorf("%s: document %d: apiVersion %q: want %s", name, doc, apiVersion, apiextensionsv1.SchemeGroupVersion)
		}
		b, err := yaml.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			md, _ := raw["metadata"].(map[string]any)
			return nil, fmt.Errorf("%s: document %d (CustomResourceDefinition %v): %w", name, doc, md["name"], err)
		}
		out = append(out, crd)
	}
}
