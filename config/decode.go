package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	kjson "sigs.k8s.io/json"
)

// fieldErrors are decoding problems that each name their field from the top of the file, e.g.
// `policy.fail_on_violation: got string, want boolean` or `unknown field "governance.exemption_approvals"`.
type fieldErrors []string

func (e fieldErrors) Error() string { return strings.Join(e, "; ") }

// decodeStrict decodes the JSON js into v as decodeFile does (unknown and duplicate fields refused), naming every
// problem by its path below prefix. The sections that need it decode themselves with it, so their lists name
// the entry at fault (`exemptions[1].expires_at`), which a decoder of the whole file cannot.
func decodeStrict(js []byte, v any, prefix string) error {
	strict, err := kjson.UnmarshalStrict(js, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		var fe fieldErrors
		if errors.As(err, &fe) {
			return fe // a nested section's own problems, already named from the top
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fieldErrors{fmt.Sprintf("%s: got %s, want %s", join(prefix, withoutPlain(te.Field)), te.Value, jsonType(te.Type))}
		}
		return fieldErrors{fmt.Sprintf("%s: %v", prefix, err)}
	}
	if len(strict) == 0 {
		return nil
	}
	msgs := make(fieldErrors, 0, len(strict))
	for _, e := range strict {
		var fe kjson.FieldError
		if errors.As(e, &fe) {
			fe.SetFieldPath(join(prefix, fe.FieldPath()))
		}
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// decodeList decodes a JSON array element by element into a slice of T, each with its index in the path.
func decodeList[T any](js []byte, prefix string) ([]T, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fieldErrors{fmt.Sprintf("%s: got %s, want array", prefix, jsonKind(js))}
	}
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := decodeStrict(r, &out[i], fmt.Sprintf("%s[%d]", prefix, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withoutPlain drops the embedded `plain` of the sections that decode their lists themselves (a struct that
// embeds the section's type as plain): the field path is the one written in the file.
func withoutPlain(field string) string {
	parts := strings.Split(field, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "plain" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// join appends a dotted field path to prefix; array indexes join without a dot.
func join(prefix, field string) string {
	switch {
	case field == "":
		return prefix
	case prefix == "":
		return field
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// jsonType names a Go type as JSON does, for messages.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

// jsonKind names the kind of a JSON value: object, array, string, number, boolean or null.
func jsonKind(js []byte) string {
	b := bytes.TrimSpace(js)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
