package cedar

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go/types"
	cedarschema "github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The entity types and actions of Cedar for Kubernetes' admission schema, which ATTEST follows so that its
// admission policies run unmodified.
const (
	UserType           = types.EntityType("k8s::User")
	GroupType          = types.EntityType("k8s::Group")
	ServiceAccountType = types.EntityType("k8s::ServiceAccount")
	NodeType           = types.EntityType("k8s::Node")
	ActionType         = types.EntityType("k8s::admission::Action")
)

// Actions are the admission actions by AdmissionRequest operation; "all" is the parent of the four.
var Actions = map[string]string{"CREATE": "create", "UPDATE": "update", "DELETE": "delete", "CONNECT": "connect"}

// connectKinds are the objects of CONNECT requests (core/v1), which carry no ObjectMeta.
var connectKinds = []string{"NodeProxyOptions", "PodAttachOptions", "PodExecOptions", "PodPortForwardOptions", "PodProxyOptions", "ServiceProxyOptions"}

// EntityType is the Cedar type of a resource of group, version and kind, as Cedar for Kubernetes names it:
// core::v1::Pod, apps::v1::Deployment, rbac::v1::Role (the first label of a Kubernetes group), and a custom
// resource's group reversed (widgets.example.com → com::example::widgets::v1::Widget).
func EntityType(group, version, kind string) types.EntityType {
	return types.EntityType(groupNamespace(group) + "::" + ident(version) + "::" + kind)
}

// KindOf is the Kubernetes group and kind of a resource entity type: a built-in kind's as the API serves it
// (rbac::v1::Role → rbac.authorization.k8s.io, Role), else EntityType's naming read back (com::example::widgets::
// v1::Widget → widgets.example.com, Widget).
func KindOf(et types.EntityType) (group, kind string) {
	if s, err := theSchema(); err == nil {
		if gk, ok := s.groupKinds[et]; ok {
			return gk.Group, gk.Kind
		}
	}
	parts := strings.Split(string(et), "::")
	if len(parts) < 3 {
		return "", string(et)
	}
	labels := parts[:len(parts)-2]
	if len(labels) == 1 && labels[0] == "core" {
		return "", parts[len(parts)-1]
	}
	slices.Reverse(labels)
	return strings.Join(labels, "."), parts[len(parts)-1]
}

func groupNamespace(group string) string {
	if group == "" {
		return "core"
	}
	labels := strings.Split(group, ".")
	if len(labels) == 1 || strings.HasSuffix(group, ".k8s.io") {
		return ident(labels[0])
	}
	out := make([]string, 0, len(labels))
	for i := len(labels) - 1; i >= 0; i-- {
		out = append(out, ident(labels[i]))
	}
	return strings.Join(out, "::")
}

// kindSchema is the schema ATTEST evaluates Cedar policies with: the built-in kinds, derived once from the
// Kubernetes API's Go types, and the custom kinds of the CustomResourceDefinitions last given to UseCustomKinds.
type kindSchema struct {
	text     string
	resolved *resolved.Schema
	// kinds are the shapes of the resource entity types, by Cedar type.
	kinds map[types.EntityType]*shape
	// groupKinds are the Kubernetes group and kind of each resource entity type.
	groupKinds map[types.EntityType]schema.GroupKind
}

// builtinKinds are the built-in kinds' shapes: the reflection walk over client-go's types, done once per process
// and shared by every schema built after it (a schema with custom kinds only adds to it).
type builtinKinds struct {
	ss                   *shapes
	kinds                map[types.EntityType]*shape
	groupKinds           map[types.EntityType]schema.GroupKind
	objectKinds, connect []string
	// meta is meta::v1::ObjectMeta, the metadata of every custom kind.
	meta *shape
}

var (
	builtins     *builtinKinds
	builtinsOnce sync.Once
	builtinsErr  error

	builtSchema   *kindSchema
	buildSchemaMu sync.Once
	buildErr      error

	// current is the schema UseCustomKinds installed; nil means the built-in one.
	current atomic.Pointer[kindSchema]
	// installed counts the schemas UseCustomKinds installed (SchemaVersion).
	installed atomic.Uint64
)

// SchemaVersion changes each time UseCustomKinds installs a schema: a policy that did not validate against the
// schema of an older version may validate now (its CRD has arrived), so what loaded policies once reads them again.
func SchemaVersion() uint64 { return installed.Load() }

func theBuiltins() (*builtinKinds, error) {
	builtinsOnce.Do(func() { builtins, builtinsErr = walkBuiltins() })
	return builtins, builtinsErr
}

// theSchema is the schema in use: the one UseCustomKinds installed, else the built-in one, built on first use
// (about the cost of parsing it: done once per process).
func theSchema() (*kindSchema, error) {
	if s := current.Load(); s != nil {
		return s, nil
	}
	return buildSchemaOnce()
}

// SchemaText is the Cedar schema (human-readable format) that ATTEST validates and evaluates policies with:
// Cedar for Kubernetes' principals and admission actions, a resource entity type for every built-in kind and
// every custom kind given to UseCustomKinds, and ATTEST's context.
func SchemaText() (string, error) {
	s, err := theSchema()
	if err != nil {
		return "", err
	}
	return s.text, nil
}

// buildSchema is the schema of the built-in kinds alone.
func buildSchema() (*kindSchema, error) {
	b, err := theBuiltins()
	if err != nil {
		return nil, err
	}
	return b.schema(nil)
}

func walkBuiltins() (*builtinKinds, error) {
	ss := newShapes()
	kinds := map[types.EntityType]*shape{}
	groupKinds := map[types.EntityType]schema.GroupKind{}
	var objectKinds, connect []string
	sc, err := kindScheme()
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API types: %w", err)
	}
	known := sc.AllKnownTypes()
	gvks := make([]schema.GroupVersionKind, 0, len(known))
	for gvk := range known {
		gvks = append(gvks, gvk)
	}
	sort.Slice(gvks, func(i, j int) bool { return gvks[i].String() < gvks[j].String() })
	for _, gvk := range gvks {
		t := known[gvk]
		if gvk.Version == "__internal" || strings.HasSuffix(gvk.Kind, "List") || t.Kind() != reflect.Struct {
			continue
		}
		isConnect := gvk.Group == "" && gvk.Version == "v1" && contains(connectKinds, gvk.Kind)
		if _, ok := t.FieldByName("ObjectMeta"); !ok && !isConnect {
			continue
		}
		et := EntityType(gvk.Group, gvk.Version, gvk.Kind)
		if _, dup := kinds[et]; dup {
			continue
		}
		s := &shape{kind: kindRecord, name: string(et), fields: map[string]*field{}}
		ss.fieldsOf(t, s)
		kinds[et] = s
		groupKinds[et] = gvk.GroupKind()
		if isConnect {
			connect = append(connect, string(et))
		} else {
			objectKinds = append(objectKinds, string(et))
		}
	}
	meta := ss.of(reflect.TypeOf(metav1.ObjectMeta{}))
	if meta == nil {
		return nil, errors.New("the Kubernetes API types: no shape for ObjectMeta")
	}
	return &builtinKinds{ss: ss, kinds: kinds, groupKinds: groupKinds, objectKinds: objectKinds, connect: connect, meta: meta}, nil
}

// schema writes, parses and resolves the schema of the built-in kinds and the custom ones.
func (b *builtinKinds) schema(custom []customKind) (*kindSchema, error) {
	kinds, groupKinds, objectKinds := b.kinds, b.groupKinds, b.objectKinds
	if len(custom) > 0 {
		kinds = maps.Clone(b.kinds)
		groupKinds = maps.Clone(b.groupKinds)
		objectKinds = slices.Clone(b.objectKinds)
		for _, c := range custom {
			kinds[c.et] = c.shape
			groupKinds[c.et] = c.gk
			objectKinds = append(objectKinds, string(c.et))
		}
	}
	text := writeSchema(b.ss, kinds, objectKinds, b.connect)
	var sch cedarschema.Schema
	sch.SetFilename("attest.cedarschema")
	if err := sch.UnmarshalCedar([]byte(text)); err != nil {
		return nil, fmt.Errorf("parse ATTEST's Cedar schema: %w", err)
	}
	res, err := sch.Resolve()
	if err != nil {
		return nil, fmt.Errorf("resolve ATTEST's Cedar schema: %w", err)
	}
	return &kindSchema{text: text, resolved: res, kinds: kinds, groupKinds: groupKinds}, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// principals and the context: Cedar for Kubernetes' k8s namespace, and ATTEST's additions.
const fixedSchema = `namespace k8s {
	type ExtraAttribute = {"key": __cedar::String, "values": Set<__cedar::String>};
	entity Group = {"name": __cedar::String};
	entity User in [Group] = {"name": __cedar::String, "extra"?: Set<ExtraAttribute>};
	entity ServiceAccount in [Group] = {"name": __cedar::String, "namespace": __cedar::String, "extra"?: Set<ExtraAttribute>};
	entity Node in [Group] = {"name": __cedar::String, "extra"?: Set<ExtraAttribute>};
	// Cedar for Kubernetes' authorization model, so that files mixing authorization and admission policies
	// validate; its actions never occur in admission, so its policies never match there. They take ATTEST's
	// context so that a policy with an unconstrained action may read it.
	type FieldRequirement = {"field": __cedar::String, "operator": __cedar::String, "value": __cedar::String};
	type LabelRequirement = {"key": __cedar::String, "operator": __cedar::String, "values": Set<__cedar::String>};
	entity Extra = {"key": __cedar::String, "value"?: __cedar::String};
	entity NonResourceURL = {"path": __cedar::String};
	entity PrincipalUID;
	entity Resource = {
		"apiGroup": __cedar::String,
		"resource": __cedar::String,
		"subresource"?: __cedar::String,
		"namespace"?: __cedar::String,
		"name"?: __cedar::String,
		"fieldSelector"?: Set<FieldRequirement>,
		"labelSelector"?: Set<LabelRequirement>
	};
	action "get", "patch", "delete" appliesTo {principal: [Group, Node, ServiceAccount, User], resource: [NonResourceURL, Resource], context: attest::Context};
	action "list", "watch", "create", "update", "deletecollection", "use", "bind", "escalate", "approve", "sign", "attest"
		appliesTo {principal: [Group, Node, ServiceAccount, User], resource: [Resource], context: attest::Context};
	action "head", "options", "post", "put" appliesTo {principal: [Group, Node, ServiceAccount, User], resource: [NonResourceURL], context: attest::Context};
	action "impersonate" appliesTo {principal: [Group, Node, ServiceAccount, User], resource: [Extra, Group, Node, PrincipalUID, ServiceAccount, User], context: attest::Context};
}

namespace attest {
	// The admission's namespace: its name, labels, and whether ATTEST's config calls it production.
	type Namespace = {"name": __cedar::String, "labels": Set<meta::v1::KeyValue>, "production": __cedar::Bool};
	// What ATTEST established about one image of the object (the README's input.images).
	type Image = {
		"image": __cedar::String,
		"registry": __cedar::String,
		"repository": __cedar::String,
		"tag": __cedar::String,
		"digest": __cedar::String,
		"trustedRegistry": __cedar::Bool,
		"signatureVerified": __cedar::Bool,
		"signer": __cedar::String
	};
	// The DeleteOptions of a DELETE request (gracePeriodSeconds 0 is a forced deletion).
	type DeleteOptions = {"gracePeriodSeconds"?: __cedar::Long, "propagationPolicy"?: __cedar::String};
	type Context = {
		"time": __cedar::datetime,
		"namespace": Namespace,
		"images": Set<Image>,
		"approval": __cedar::String,
		"mfa": __cedar::Bool,
		"dryRun": __cedar::Bool,
		"options"?: DeleteOptions
	};
}
`

func writeSchema(ss *shapes, kinds map[types.EntityType]*shape, objectKinds, connect []string) string {
	var b strings.Builder
	b.WriteString("// The Cedar schema of ATTEST's admission policies (attest policy cedar-schema).\n")
	b.WriteString(fixedSchema)
	principals := "[k8s::Group, k8s::Node, k8s::ServiceAccount, k8s::User]"
	all := append(append([]string(nil), objectKinds...), connect...)
	sort.Strings(all)
	fmt.Fprintf(&b, "\nnamespace k8s::admission {\n")
	action := func(name, parent string, resources []string) {
		in := ""
		if parent != "" {
			in = ` in [Action::"` + parent + `"]`
		}
		fmt.Fprintf(&b, "\taction %q%s appliesTo {\n\t\tprincipal: %s,\n\t\tresource: [%s],\n\t\tcontext: attest::Context\n\t};\n",
			name, in, principals, strings.Join(resources, ", "))
	}
	action("all", "", all)
	action("connect", "all", connect)
	action("create", "all", objectKinds)
	action("delete", "all", objectKinds)
	action("update", "all", objectKinds)
	b.WriteString("}\n")

	// Common types and entity types grouped by namespace; a record named like an entity type is renamed.
	byNS := map[string][]string{}
	decl := map[string]string{}
	entityNames := map[string]bool{}
	for et := range kinds {
		entityNames[string(et)] = true
	}
	rename := map[string]string{}
	for name := range ss.records {
		if entityNames[name] {
			rename[name] = name + "Object"
		}
	}
	ref := func(s *shape) string { return typeRef(s, rename) }
	for name, s := range ss.records {
		if n, ok := rename[name]; ok {
			name = n
		}
		ns, local := splitName(name)
		byNS[ns] = append(byNS[ns], local)
		decl[name] = "\ttype " + local + " = " + recordText(s, ref) + ";\n"
	}
	for et, s := range kinds {
		ns, local := splitName(string(et))
		byNS[ns] = append(byNS[ns], local)
		withOld := &shape{kind: kindRecord, fields: s.fields}
		rec := recordText(withOld, ref)
		rec = strings.TrimSuffix(rec, "}")
		if len(s.fields) > 0 {
			rec += ", "
		}
		rec += `"oldObject"?: ` + local + "}"
		decl[string(et)] = "\tentity " + local + " = " + rec + ";\n"
	}
	if _, ok := byNS["meta::v1"]; !ok {
		byNS["meta::v1"] = nil
	}
	byNS["meta::v1"] = append(byNS["meta::v1"], "KeyValue", "KeyValueStringSlice")
	decl["meta::v1::KeyValue"] = "\ttype KeyValue = {\"key\": __cedar::String, \"value\": __cedar::String};\n"
	decl["meta::v1::KeyValueStringSlice"] = "\ttype KeyValueStringSlice = {\"key\": __cedar::String, \"value\": Set<__cedar::String>};\n"
	namespaces := make([]string, 0, len(byNS))
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, ns := range namespaces {
		locals := byNS[ns]
		sort.Strings(locals)
		fmt.Fprintf(&b, "\nnamespace %s {\n", ns)
		for _, l := range locals {
			b.WriteString(decl[ns+"::"+l])
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func splitName(name string) (ns, local string) {
	i := strings.LastIndex(name, "::")
	return name[:i], name[i+2:]
}

func typeRef(s *shape, rename map[string]string) string {
	switch s.kind {
	case kindString:
		return "__cedar::String"
	case kindLong:
		return "__cedar::Long"
	case kindBool:
		return "__cedar::Bool"
	case kindSet:
		return "Set<" + typeRef(s.elem, rename) + ">"
	case kindKeyValue:
		return "Set<meta::v1::KeyValue>"
	case kindKeyValueSlice:
		return "Set<meta::v1::KeyValueStringSlice>"
	case kindRecord:
		if s.name == "" { // a custom kind's nested object: declared inline
			return recordText(s, func(e *shape) string { return typeRef(e, rename) })
		}
		if n, ok := rename[s.name]; ok {
			return n
		}
		return s.name
	}
	return "__cedar::String"
}

func recordText(s *shape, ref func(*shape) string) string {
	names := s.sortedFields()
	parts := make([]string, 0, len(names))
	for _, n := range names {
		opt := "?"
		if s.fields[n].required {
			opt = ""
		}
		parts = append(parts, fmt.Sprintf("%q%s: %s", n, opt, ref(s.fields[n].s)))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
