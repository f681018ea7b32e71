package paramschema_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/continuums/attest/policies/paramschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// faults renders our faults as "location: message", sorted.
func faults(errs []paramschema.Error) []string {
	p := message.NewPrinter(language.English)
	out := []string{}
	for _, e := range errs {
		out = append(out, "/"+strings.Join(e.Location, "/")+": "+e.Kind.LocalizedString(p))
	}
	slices.Sort(out)
	return out
}

// reference validates with santhosh-tekuri/jsonschema (draft 2020-12), the general validator ATTEST used before,
// and renders its leaf errors the same way; compiled is false when it refuses the schema.
func reference(t testing.TB, schema, instance any) (out []string, compiled bool) {
	t.Helper()
	c := jsonschema.NewCompiler()
	if err := c.AddResource("attest:///schema.json", schema); err != nil {
		return nil, false
	}
	sch, err := c.Compile("attest:///schema.json")
	if err != nil {
		return nil, false
	}
	out = []string{}
	err = sch.Validate(instance)
	if err == nil {
		return out, true
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("reference validator: %v", err)
	}
	p := message.NewPrinter(language.English)
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if ap, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
				slices.Sort(ap.Properties) // in map order there; sorted in ours
			}
			out = append(out, "/"+strings.Join(e.InstanceLocation, "/")+": "+e.ErrorKind.LocalizedString(p))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	slices.Sort(out)
	return out, true
}

func decode(t testing.TB, text string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return v
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, schema, instance string
		want                   []string
	}{
		{"valid", `{"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}`, `{"n": 3}`, nil},
		{"wrong type", `{"type": "string"}`, `3`, []string{"/: got number, want string"}},
		{"integer written as a float", `{"type": "integer"}`, `2.0`, nil},
		{"fraction is no integer", `{"type": "integer"}`, `2.5`, []string{"/: got number, want integer"}},
		{"types listed in a fixed order", `{"type": ["string", "boolean"]}`, `null`, []string{"/: got null, want boolean or string"}},
		{"const", `{"const": "a"}`, `"b"`, []string{"/: value must be 'a'"}},
		{"enum of strings", `{"enum": ["a", "b"]}`, `"c"`, []string{"/: value must be one of 'a', 'b'"}},
		{"enum compares numbers by value", `{"enum": [1, 2]}`, `1.0`, nil},
		{"enum of objects", `{"enum": [{"a": 1}]}`, `{"a": 2}`, []string{"/: 'enum' failed"}},
		{"minimum and maximum", `{"minimum": 2, "maximum": 1}`, `1.5`, []string{"/: maximum: got 1.5, want 1", "/: minimum: got 1.5, want 2"}},
		{"exclusive bounds", `{"exclusiveMinimum": 1, "exclusiveMaximum": 1}`, `1`, []string{"/: exclusiveMaximum: got 1, want 1", "/: exclusiveMinimum: got 1, want 1"}},
		{"multipleOf", `{"multipleOf": 0.5}`, `1.25`, []string{"/: multipleOf: got 1.25, want 0.5"}},
		{"lengths count characters", `{"minLength": 3, "maxLength": 3}`, `"äö"`, []string{"/: minLength: got 2, want 3"}},
		{"maxLength", `{"maxLength": 1}`, `"ab"`, []string{"/: maxLength: got 2, want 1"}},
		{"pattern", `{"pattern": "^[^\\s]+$"}`, `"a b"`, []string{`/: 'a b' does not match pattern '^[^\\s]+$'`}},
		{"array bounds and items", `{"type": "array", "minItems": 3, "items": {"type": "string"}}`, `["a", 1]`, []string{"/1: got number, want string", "/: minItems: got 2, want 3"}},
		{"maxItems", `{"maxItems": 1}`, `[1, 2]`, []string{"/: maxItems: got 2, want 1"}},
		{"uniqueItems", `{"uniqueItems": true}`, `[1, "a", {"x": [1]}, 1.0, {"x": [1.0]}]`, []string{"/: items at 0 and 3 are equal"}},
		{"uniqueItems of objects", `{"uniqueItems": true}`, `[{"x": 1, "y": 2}, {"y": 2, "x": 1}]`, []string{"/: items at 0 and 1 are equal"}},
		{"required", `{"required": ["a", "b", "c"]}`, `{"b": 1}`, []string{"/: missing properties 'a', 'c'"}},
		{"additionalProperties false", `{"properties": {"a": {}}, "additionalProperties": false}`, `{"a": 1, "z": 2, "y": 3}`, []string{"/: additional properties 'y', 'z' not allowed"}},
		{"additionalProperties schema", `{"additionalProperties": {"type": "boolean"}}`, `{"a": true, "b": 1}`, []string{"/b: got number, want boolean"}},
		{"property counts", `{"minProperties": 2, "maxProperties": 0}`, `{"a": 1}`, []string{"/: maxProperties: got 1, want 0", "/: minProperties: got 1, want 2"}},
		{"nested locations", `{"properties": {"w": {"items": {"properties": {"days": {"items": {"enum": ["Mon"]}}}}}}}`, `{"w": [{"days": ["Mon"]}, {"days": ["Mon", "Sun"]}]}`, []string{"/w/1/days/1: value must be 'Mon'"}},
		{"not", `{"not": {"type": "string"}}`, `"a"`, []string{"/: 'not' failed"}},
		{"allOf reports each failing branch", `{"allOf": [{"minimum": 5}, {"multipleOf": 2}, {"type": "number"}]}`, `3`, []string{"/: minimum: got 3, want 5", "/: multipleOf: got 3, want 2"}},
		{"anyOf matched", `{"anyOf": [{"type": "string"}, {"minimum": 5}]}`, `7`, nil},
		{"anyOf failed reports every branch", `{"anyOf": [{"type": "string"}, {"minimum": 5}]}`, `3`, []string{"/: got number, want string", "/: minimum: got 3, want 5"}},
		{"oneOf none", `{"oneOf": [{"type": "string"}, {"type": "boolean"}]}`, `3`, []string{"/: got number, want boolean", "/: got number, want string"}},
		{"oneOf two", `{"oneOf": [{"type": "string"}, {"type": "number"}, {"minimum": 1}]}`, `3`, []string{"/: 'oneOf' failed, subschemas 1, 2 matched"}},
		{"oneOf exactly one", `{"oneOf": [{"type": "string"}, {"type": "number"}]}`, `3`, nil},
		{"false schema", `{"properties": {"a": false}}`, `{"a": 1}`, []string{"/a: false schema"}},
		{"type fails first", `{"type": "string", "minimum": 5, "not": {}}`, `3`, []string{"/: got number, want string"}},
		{"keywords of other types ignored", `{"minLength": 5, "minimum": 2}`, `true`, nil},
		{"annotations only describe", `{"title": "t", "description": "d", "default": 1, "examples": [1], "format": "email", "deprecated": true, "$comment": "c"}`, `"not an email"`, nil},
		{"bounds beyond any length", `{"maxLength": 1e12}`, `"abc"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema, instance := decode(t, tc.schema), decode(t, tc.instance)
			s, err := paramschema.Compile(schema)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got := faults(s.Validate(instance))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("faults\n got %q\nwant %q", got, want)
			}
			ref, ok := reference(t, schema, instance)
			if !ok {
				t.Fatalf("the reference validator refuses the schema")
			}
			if !slices.Equal(got, ref) {
				t.Errorf("faults differ from the reference validator's\n got %q\n ref %q", got, ref)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct{ name, schema, want string }{
		{"not a schema", `"string"`, "the schema: want a schema (an object or a boolean), got string"},
		{"unknown type", `{"properties": {"n": {"type": "nonsense"}}}`, `properties.n.type: "nonsense" is not a JSON type`},
		{"type twice", `{"type": ["string", "string"]}`, `type: "string" is listed twice`},
		{"no type", `{"type": []}`, "type: want at least one type name"},
		{"type not a name", `{"type": [1]}`, "type[0]: want a type name, got number"},
		{"unsupported keyword", `{"items": {"$ref": "#/x"}}`, `items.$ref: keyword "$ref" is not supported in parameter schemas (supported: type, const`},
		{"misspelt keyword", `{"minlength": 1}`, `minlength: keyword "minlength" is not supported`},
		{"negative count", `{"minItems": -1}`, "minItems: want a non-negative integer, got -1"},
		{"fractional count", `{"maxLength": 1.5}`, "maxLength: want a non-negative integer, got 1.5"},
		{"number as text", `{"minimum": "3"}`, "minimum: want a number, got string"},
		{"multipleOf zero", `{"multipleOf": 0}`, "multipleOf: want a number above 0, got 0"},
		{"bad pattern", `{"pattern": "("}`, `pattern: "(" is not a valid regular expression`},
		{"pattern not a string", `{"pattern": 1}`, "pattern: want a string, got number"},
		{"uniqueItems not a boolean", `{"uniqueItems": "yes"}`, "uniqueItems: want a boolean, got string"},
		{"required twice", `{"required": ["a", "a"]}`, `required: "a" is listed twice`},
		{"required not names", `{"required": [1]}`, "required[0]: want a property name, got number"},
		{"properties not an object", `{"properties": []}`, "properties: want an object of schemas, got array"},
		{"bad nested schema", `{"properties": {"a": {"items": 3}}}`, "properties.a.items: want a schema (an object or a boolean), got number"},
		{"empty anyOf", `{"anyOf": []}`, "anyOf: want a non-empty array of schemas, got array"},
		{"bad branch", `{"oneOf": [{}, {"type": "x"}]}`, `oneOf[1].type: "x" is not a JSON type`},
		{"enum not an array", `{"enum": "a"}`, "enum: want an array, got string"},
		{"description not text", `{"description": 1}`, "description: want a string, got number"},
		{"examples not an array", `{"examples": 1}`, "examples: want an array, got number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := paramschema.Compile(decode(t, tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParameters: the parameters object takes each declared parameter by its schema and no other; errors name the
// parameter first.
func TestParameters(t *testing.T) {
	s, err := paramschema.Parameters(map[string]any{"n": decode(t, `{"type": "integer", "minimum": 1}`), "any": true})
	if err != nil {
		t.Fatal(err)
	}
	got := faults(s.Validate(decode(t, `{"n": 0, "any": [1], "other": 1}`)))
	want := []string{"/: additional properties 'other' not allowed", "/n: minimum: got 0, want 1"}
	if !slices.Equal(got, want) {
		t.Errorf("faults %q, want %q", got, want)
	}
	if got := faults(s.Validate(decode(t, `[]`))); !slices.Equal(got, []string{"/: got array, want object"}) {
		t.Errorf("a list for the parameters: %q", got)
	}
	_, err = paramschema.Parameters(map[string]any{"n": decode(t, `{"minimum": "1"}`)})
	if err == nil || err.Error() != "n.minimum: want a number, got string" {
		t.Errorf("error %v, want it to name the parameter first", err)
	}
}

// probes are instances every fuzzed schema is checked with.
var probes = []string{`null`, `true`, `0`, `1.5`, `-3`, `"a"`, `"a b"`, `[]`, `[1, 1]`, `["x", 2, null]`, `{}`,
	`{"a": 1}`, `{"a": "x", "b": [true]}`, `{"days": ["Mon"], "start": "09:00"}`}

// FuzzCompile: every schema Compile accepts the reference accepts too, and the two find the same faults in each
// probe; Compile never panics on any JSON.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`{"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}, "additionalProperties": false}`,
		`{"items": {"type": "string", "pattern": "^x", "minLength": 1}, "uniqueItems": true, "maxItems": 2}`,
		`{"anyOf": [{"required": ["a"]}, {"not": {"type": "object"}}], "oneOf": [{"enum": [1, "a"]}, {"const": {"a": 1}}]}`,
		`{"allOf": [{"multipleOf": 0.5}, {"exclusiveMaximum": 3}], "minProperties": 1}`, `true`, `false`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var schema any
		if json.Unmarshal([]byte(text), &schema) != nil {
			return
		}
		s, err := paramschema.Compile(schema)
		if err != nil {
			return
		}
		for _, p := range probes {
			instance := decode(t, p)
			ref, ok := reference(t, schema, instance)
			if !ok {
				t.Fatalf("Compile accepts %s, the reference refuses it", text)
			}
			if got := faults(s.Validate(instance)); !slices.Equal(got, ref) {
				t.Fatalf("schema %s, instance %s:\n got %q\n ref %q", text, p, got, ref)
			}
		}
	})
}

// FuzzValidate: on any JSON instance, the library's parameter schema shapes find what the reference finds.
func FuzzValidate(f *testing.F) {
	schemas := []string{
		`{"type": "object", "additionalProperties": false, "properties": {"trusted_registries": {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": "^[^\\s]+$"}}, "min_replicas": {"type": "integer", "minimum": 1}}}`,
		`{"type": "object", "properties": {"windows": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["days", "start", "end"], "properties": {"days": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"enum": ["Mon", "Tue"]}}, "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}}}}}}`,
	}
	for _, s := range probes {
		f.Add(s)
	}
	f.Add(`{"trusted_registries": ["gcr.io", 1, "a b", ""], "min_replicas": 0.5, "x": null}`)
	f.Add(`{"windows": [{"days": ["Mon", "Mon", "Sun"], "start": "9"}, {}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		var instance any
		if json.Unmarshal([]byte(text), &instance) != nil {
			return
		}
		for _, st := range schemas {
			schema := decode(t, st)
			s, err := paramschema.Compile(schema)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := reference(t, schema, instance)
			if got := faults(s.Validate(instance)); !slices.Equal(got, ref) {
				t.Fatalf("instance %s:\n got %q\n ref %q", text, got, ref)
			}
		}
	})
}
