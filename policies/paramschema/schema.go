// Package paramschema checks policy parameters against the JSON schema (draft 2020-12) a policy's METADATA declares.
//
// It supports the keywords parameters need and refuses every other one, so a constraint is never silently ignored;
// it reports each value at fault with the message kinds of github.com/santhosh-tekuri/jsonschema/v6/kind. It exists
// because a general validator compiles every draft's metaschema when the program starts, a sixth of the CLI's
// start-up, for schemas of a few properties.
package paramschema

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Schema is a compiled schema; the zero value accepts everything.
type Schema struct {
	never    bool // the schema false
	types    []string
	hasConst bool
	constVal any
	enum     []any
	hasEnum  bool

	minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf *big.Rat

	minLength, maxLength         int // -1: unset
	minItems, maxItems           int
	minProperties, maxProperties int
	pattern                      *regexp.Regexp
	uniqueItems                  bool
	items                        *Schema

	required   []string
	properties map[string]*Schema
	additional *Schema // nil: any property is allowed
	allOf      []*Schema
	anyOf      []*Schema
	oneOf      []*Schema
	not        *Schema
}

// jsonTypes are the type names in the order messages list them.
var jsonTypes = []string{"null", "boolean", "number", "integer", "string", "array", "object"}

// describing are the keywords that annotate and never reject a value (format is an annotation in draft 2020-12).
var describing = map[string]bool{
	"title": true, "description": true, "default": true, "examples": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "$comment": true, "format": true,
}

// describingType is the JSON type each describing keyword takes ("": any value).
var describingType = map[string]string{
	"title": "string", "description": "string", "examples": "array", "deprecated": "boolean",
	"readOnly": "boolean", "writeOnly": "boolean", "$comment": "string", "format": "string",
}

// Supported lists every keyword Compile accepts, for error messages and documentation.
func Supported() []string {
	kw := []string{
		"type", "const", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
		"minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "items",
		"required", "properties", "additionalProperties", "minProperties", "maxProperties",
		"allOf", "anyOf", "oneOf", "not",
	}
	kw = append(kw, slices.Sorted(maps.Keys(describing))...)
	return kw
}

// Compile reads a schema given as JSON-shaped values (map[string]any, []any, numbers, strings, bools, nil).
// Errors name the keyword at fault by its path in the schema, e.g. "properties.n.type".
func Compile(doc any) (*Schema, error) {
	return compile(doc, "")
}

// Parameters compiles the schema of a policy's parameters object: each declared parameter by its own schema, and no
// other parameter. Errors name the parameter first, e.g. "n.minimum: want a number, got string".
func Parameters(params map[string]any) (*Schema, error) {
	s := newSchema()
	s.types = []string{"object"}
	s.additional = &Schema{never: true}
	s.properties = make(map[string]*Schema, len(params))
	for _, name := range slices.Sorted(maps.Keys(params)) {
		var err error
		if s.properties[name], err = compile(params[name], name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newSchema is a schema with every bound unset.
func newSchema() *Schema {
	return &Schema{minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, minProperties: -1, maxProperties: -1}
}

func compile(doc any, at string) (*Schema, error) {
	switch d := doc.(type) {
	case bool:
		s := newSchema()
		s.never = !d
		return s, nil
	case map[string]any:
		s := newSchema()
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if err := s.keyword(k, d[k], join(at, k)); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s: want a schema (an object or a boolean), got %s", orRoot(at), typeName(doc))
}

// keyword compiles one keyword of a schema object.
func (s *Schema) keyword(k string, v any, at string) error {
	var err error
	switch k {
	case "type":
		s.types, err = compileTypes(v, at)
	case "const":
		s.hasConst, s.constVal = true, v
	case "enum":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %s", at, typeName(v))
		}
		s.hasEnum, s.enum = true, arr
	case "minimum":
		s.minimum, err = compileNumber(v, at)
	case "maximum":
		s.maximum, err = compileNumber(v, at)
	case "exclusiveMinimum":
		s.exclusiveMinimum, err = compileNumber(v, at)
	case "exclusiveMaximum":
		s.exclusiveMaximum, err = compileNumber(v, at)
	case "multipleOf":
		if s.multipleOf, err = compileNumber(v, at); err == nil && s.multipleOf.Sign() <= 0 {
			err = fmt.Errorf("%s: want a number above 0, got %v", at, v)
		}
	case "minLength":
		s.minLength, err = compileCount(v, at)
	case "maxLength":
		s.maxLength, err = compileCount(v, at)
	case "minItems":
		s.minItems, err = compileCount(v, at)
	case "maxItems":
		s.maxItems, err = compileCount(v, at)
	case "minProperties":
		s.minProperties, err = compileCount(v, at)
	case "maxProperties":
		s.maxProperties, err = compileCount(v, at)
	case "pattern":
		p, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", at, typeName(v))
		}
		if s.pattern, err = regexp.Compile(p); err != nil {
			err = fmt.Errorf("%s: %q is not a valid regular expression: %w", at, p, err)
		}
	case "uniqueItems":
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%s: want a boolean, got %s", at, typeName(v))
		}
		s.uniqueItems = b
	case "items":
		s.items, err = compile(v, at)
	case "required":
		s.required, err = compileNames(v, at)
	case "properties":
		props, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object of schemas, got %s", at, typeName(v))
		}
		s.properties = make(map[string]*Schema, len(props))
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if s.properties[name], err = compile(props[name], join(at, name)); err != nil {
				return err
			}
		}
	case "additionalProperties":
		s.additional, err = compile(v, at)
	case "allOf":
		s.allOf, err = compileList(v, at)
	case "anyOf":
		s.anyOf, err = compileList(v, at)
	case "oneOf":
		s.oneOf, err = compileList(v, at)
	case "not":
		s.not, err = compile(v, at)
	default:
		if !describing[k] {
			return fmt.Errorf("%s: keyword %q is not supported in parameter schemas (supported: %s)", at, k, strings.Join(Supported(), ", "))
		}
		if want := describingType[k]; want != "" && want != typeName(v) {
			article := "a"
			if want == "array" {
				article = "an"
			}
			return fmt.Errorf("%s: want %s %s, got %s", at, article, want, typeName(v))
		}
	}
	return err
}

func compileTypes(v any, at string) ([]string, error) {
	var names []string
	switch t := v.(type) {
	case string:
		names = []string{t}
	case []any:
		var err error
		if names, err = uniqueStrings(t, at, "a type name"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: want a type name or a list of them, got %s", at, typeName(v))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: want at least one type name", at)
	}
	for _, n := range names {
		if !slices.Contains(jsonTypes, n) {
			return nil, fmt.Errorf("%s: %q is not a JSON type (want one of %s)", at, n, strings.Join(jsonTypes, ", "))
		}
	}
	// Messages list the wanted types in a fixed order, whatever the schema's order.
	var ordered []string
	for _, t := range jsonTypes {
		if slices.Contains(names, t) {
			ordered = append(ordered, t)
		}
	}
	return ordered, nil
}

func compileNumber(v any, at string) (*big.Rat, error) {
	r, ok := number(v)
	if !ok {
		return nil, fmt.Errorf("%s: want a number, got %s", at, typeName(v))
	}
	return r, nil
}

// compileCount reads a non-negative integer (1.0 counts as one, as in JSON).
func compileCount(v any, at string) (int, error) {
	r, ok := number(v)
	if !ok || !r.IsInt() || r.Sign() < 0 {
		return 0, fmt.Errorf("%s: want a non-negative integer, got %v", at, v)
	}
	if !r.Num().IsInt64() || r.Num().Int64() > math.MaxInt32 {
		return math.MaxInt32, nil // more than any value can hold
	}
	return int(r.Num().Int64()), nil
}

func compileNames(v any, at string) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an array of property names, got %s", at, typeName(v))
	}
	return uniqueStrings(arr, at, "a property name")
}

// uniqueStrings reads an array of strings, each listed once; what names an element in errors.
func uniqueStrings(arr []any, at, what string) ([]string, error) {
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		n, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want %s, got %s", at, i, what, typeName(e))
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%s: %q is listed twice", at, n)
		}
		out = append(out, n)
	}
	return out, nil
}

func compileList(v any, at string) ([]*Schema, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("%s: want a non-empty array of schemas, got %s", at, typeName(v))
	}
	out := make([]*Schema, len(arr))
	for i, e := range arr {
		var err error
		if out[i], err = compile(e, at+"["+strconv.Itoa(i)+"]"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func orRoot(at string) string {
	if at == "" {
		return "the schema"
	}
	return at
}

// typeName names a JSON-shaped value's type for messages ("number" for every Go number type).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// number reads any Go number a JSON or YAML decoder yields as an exact rational; false for other values and for
// infinities and NaN, which JSON cannot hold.
func number(v any) (*big.Rat, bool) {
	switch n := v.(type) {
	case float64:
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, false
		}
	case float32:
		if math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
			return nil, false
		}
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
	case json.Number:
	default:
		return nil, false
	}
	return new(big.Rat).SetString(fmt.Sprint(v))
}
