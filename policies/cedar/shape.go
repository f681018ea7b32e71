package cedar

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
)

// A shape is the Cedar type of a Kubernetes field, derived once from the API's Go types. The same shape writes
// the schema and converts objects, so an object is always converted to what the schema declares (a label map to
// a set of meta::v1::KeyValue records, a Quantity or IntOrString to a String) and policies validated against the
// schema see the values they were checked against.
type shape struct {
	kind   shapeKind
	name   string            // a record's common type, e.g. "core::v1::PodSpec"
	fields map[string]*field // record fields by JSON name
	elem   *shape            // a set's element
}

type field struct {
	s *shape
	// required is set only for a custom kind's field its openAPIV3Schema requires (the API server has checked it
	// is there); a built-in kind's fields are all optional.
	required bool
}

type shapeKind uint8

const (
	kindString shapeKind = iota + 1
	kindLong
	kindBool
	kindRecord
	kindSet
	kindKeyValue      // map[string]string-like: Set<meta::v1::KeyValue>
	kindKeyValueSlice // map[string][]string: Set<meta::v1::KeyValueStringSlice>
)

var (
	stringShape = &shape{kind: kindString}
	longShape   = &shape{kind: kindLong}
	boolShape   = &shape{kind: kindBool}
)

// maxDepth bounds conversion of untyped values (custom resources, malformed manifests): as Cedar for
// Kubernetes does, deeper objects are refused rather than risking the stack.
const maxDepth = 32

// toValue converts a decoded JSON value to the Cedar value s declares; ok is false for a value left out (null,
// an empty record, a field the schema does not declare). A value whose JSON type differs from the declared one
// (possible only in a manifest the API server has not validated) is converted by its own type instead.
func toValue(v any, s *shape, depth int) (types.Value, bool, error) {
	if depth > maxDepth {
		return nil, false, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	if v == nil {
		return nil, false, nil
	}
	if s == nil {
		return untyped(v, "", depth)
	}
	switch s.kind {
	case kindString:
		if str, ok := scalarString(v); ok {
			return types.String(str), true, nil
		}
	case kindLong:
		if n, ok := integer(v); ok {
			return types.Long(n), true, nil
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return types.Boolean(b), true, nil
		}
	case kindRecord:
		if m, ok := v.(map[string]any); ok {
			return record(m, s, depth)
		}
	case kindSet:
		if a, ok := v.([]any); ok {
			vals := make([]types.Value, 0, len(a))
			for i, e := range a {
				ev, ok, err := toValue(e, s.elem, depth+1)
				if err != nil {
					return nil, false, fmt.Errorf("[%d]: %w", i, err)
				}
				if ok {
					vals = append(vals, ev)
				}
			}
			return types.NewSet(vals...), true, nil
		}
	case kindKeyValue:
		if m, ok := v.(map[string]any); ok {
			return keyValues(m), true, nil
		}
	case kindKeyValueSlice:
		if m, ok := v.(map[string]any); ok {
			return keyValueSlices(m), true, nil
		}
	}
	return untyped(v, "", depth)
}

func record(m map[string]any, s *shape, depth int) (types.Value, bool, error) {
	rec := make(types.RecordMap, len(m))
	for k, e := range m {
		f, declared := s.fields[k]
		if !declared {
			continue // what the schema does not declare, policies cannot name
		}
		ev, ok, err := toValue(e, f.s, depth+1)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", k, err)
		}
		if ok {
			rec[types.String(k)] = ev
		}
	}
	if len(rec) == 0 {
		return nil, false, nil
	}
	return types.NewRecord(rec), true, nil
}

// untyped converts a value with no declared shape (a custom resource's fields) by its JSON type, as Cedar for
// Kubernetes does: labels and annotations become sets of KeyValue records, objects records, arrays sets.
func untyped(v any, key string, depth int) (types.Value, bool, error) {
	if depth > maxDepth {
		return nil, false, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, false, nil
	case bool:
		return types.Boolean(x), true, nil
	case string:
		return types.String(x), true, nil
	case map[string]any:
		if key == "labels" || key == "annotations" {
			return keyValues(x), true, nil
		}
		rec := make(types.RecordMap, len(x))
		for k, e := range x {
			ev, ok, err := untyped(e, k, depth+1)
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", k, err)
			}
			if ok {
				rec[types.String(k)] = ev
			}
		}
		if len(rec) == 0 {
			return nil, false, nil
		}
		return types.NewRecord(rec), true, nil
	case []any:
		vals := make([]types.Value, 0, len(x))
		for i, e := range x {
			ev, ok, err := untyped(e, key, depth+1)
			if err != nil {
				return nil, false, fmt.Errorf("[%d]: %w", i, err)
			}
			if ok {
				vals = append(vals, ev)
			}
		}
		return types.NewSet(vals...), true, nil
	}
	if n, ok := integer(v); ok {
		return types.Long(n), true, nil
	}
	if s, ok := scalarString(v); ok { // a fraction: Cedar has no floating point
		return types.String(s), true, nil
	}
	return nil, false, fmt.Errorf("unsupported value of type %T", v)
}

// scalarString is a string, or a number written as JSON writes it (a Quantity or IntOrString given as a number).
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// integer is a whole number that fits a Cedar Long.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

// keyValues is a string map as Cedar for Kubernetes represents it: a set of {key, value} records (Cedar records
// have fixed attributes, so a map with arbitrary keys cannot be one). Values that are not strings (a Quantity
// given as a number) are written as JSON writes them.
func keyValues(m map[string]any) types.Set {
	vals := make([]types.Value, 0, len(m))
	for k, e := range m {
		s, ok := scalarString(e)
		if !ok {
			continue
		}
		vals = append(vals, types.NewRecord(types.RecordMap{"key": types.String(k), "value": types.String(s)}))
	}
	return types.NewSet(vals...)
}

func keyValueSlices(m map[string]any) types.Set {
	vals := make([]types.Value, 0, len(m))
	for k, e := range m {
		a, _ := e.([]any)
		ss := make([]types.Value, 0, len(a))
		for _, x := range a {
			if s, ok := scalarString(x); ok {
				ss = append(ss, types.String(s))
			}
		}
		vals = append(vals, types.NewRecord(types.RecordMap{"key": types.String(k), "value": types.NewSet(ss...)}))
	}
	return types.NewSet(vals...)
}

// shapes derives shapes from Go API types by their JSON encoding.
type shapes struct {
	byType  map[reflect.Type]*shape
	pending map[reflect.Type]bool
	records map[string]*shape // common types by qualified name
}

func newShapes() *shapes {
	return &shapes{byType: map[reflect.Type]*shape{}, pending: map[reflect.Type]bool{}, records: map[string]*shape{}}
}

// Types encoded as strings whatever their Go kind (as Cedar for Kubernetes declares them).
var stringTypes = map[string]bool{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":          true,
	"k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime":     true,
	"k8s.io/apimachinery/pkg/apis/meta/v1.Duration":      true,
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString":    true,
	"k8s.io/apimachinery/pkg/api/resource.Quantity":      true,
	"k8s.io/apimachinery/pkg/api/resource.QuantityValue": true,
}

// Types with no fixed shape, left out of the schema and of conversion.
var opaqueTypes = map[string]bool{
	"k8s.io/apimachinery/pkg/runtime.RawExtension":                             true,
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":                            true,
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1.JSON":            true,
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured.Unstructured":           true,
	"k8s.io/apimachinery/pkg/runtime.Unknown":                                  true,
	"k8s.io/apimachinery/pkg/apis/meta/v1.TypeMeta":                            false,
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured.UnstructuredList":       true,
	"k8s.io/apimachinery/pkg/runtime.Object":                                   true,
	"k8s.io/apimachinery/pkg/apis/meta/v1.Object":                              true,
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured.unstructuredJSONScheme": true,
}

// of returns the shape of t, nil when it has none (opaque, or recursive: Cedar common types cannot refer to
// themselves).
func (ss *shapes) of(t reflect.Type) *shape {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	full := t.PkgPath() + "." + t.Name()
	if stringTypes[full] {
		return stringShape
	}
	if opaqueTypes[full] {
		return nil
	}
	if s, ok := ss.byType[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return stringShape
	case reflect.Bool:
		return boolShape
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return longShape
	case reflect.Float32, reflect.Float64:
		return stringShape
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // []byte: base64 in JSON
			return stringShape
		}
		e := ss.of(t.Elem())
		if e == nil {
			return nil
		}
		return &shape{kind: kindSet, elem: e}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil
		}
		e := t.Elem()
		if e.Kind() == reflect.Slice && e.Elem().Kind() == reflect.String {
			return &shape{kind: kindKeyValueSlice}
		}
		if es := ss.of(e); es != nil && es.kind == kindString {
			return &shape{kind: kindKeyValue}
		}
		return nil
	case reflect.Struct:
		if ss.pending[t] {
			return nil
		}
		ss.pending[t] = true
		s := &shape{kind: kindRecord, name: typeName(t), fields: map[string]*field{}}
		ss.fieldsOf(t, s)
		delete(ss.pending, t)
		ss.byType[t] = s
		ss.records[s.name] = s
		return s
	}
	return nil
}

// fieldsOf adds t's JSON fields to s, inlining embedded and `,inline` structs.
func (ss *shapes) fieldsOf(t reflect.Type, s *shape) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		if (f.Anonymous && name == "") || strings.Contains(","+opts+",", ",inline,") {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				ss.fieldsOf(ft, s)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := ss.of(ft)
		if fs == nil {
			continue
		}
		// Every field is optional: an object the API server has not defaulted (a manifest, an old object) may
		// lack any field, and policies guard reads with `has`, which strict validation then requires.
		s.fields[name] = &field{s: fs}
	}
}

// typeName is the Cedar common-type name of a Go API type: the namespace of its package's group and version
// (k8s.io/api/apps/v1 → apps::v1, apimachinery's meta/v1 → meta::v1) and its Go name.
func typeName(t reflect.Type) string {
	p := t.PkgPath()
	parts := strings.Split(p, "/")
	ns := "attest::types"
	switch {
	case strings.HasPrefix(p, "k8s.io/api/") && len(parts) >= 4:
		ns = ident(parts[2]) + "::" + ident(parts[3])
	case strings.HasPrefix(p, "k8s.io/apimachinery/pkg/apis/") && len(parts) >= 6:
		ns = ident(parts[4]) + "::" + ident(parts[5])
	case len(parts) >= 2:
		ns = ident(parts[len(parts)-2]) + "::" + ident(parts[len(parts)-1])
	}
	return ns + "::" + t.Name()
}

// ident makes a Kubernetes name part a Cedar identifier.
func ident(s string) string {
	s = strings.ReplaceAll(s, "-", "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "_" + s
	}
	return s
}

// sortedFields are a record's field names in order, for a stable schema text.
func (s *shape) sortedFields() []string {
	names := make([]string, 0, len(s.fields))
	for n := range s.fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
