package paramschema

import (
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/message"
)

// Kind says what is wrong with a value; its LocalizedString is the message users read.
type Kind interface {
	LocalizedString(*message.Printer) string
}

// Error is one value at fault.
type Error struct {
	// Location is the path from the validated value to the value at fault: property names and array indexes.
	Location []string
	Kind     Kind
}

// Validate checks a JSON-shaped value and returns every value at fault (none when v is valid). Where several
// alternatives (anyOf, oneOf) all fail, the faults of each are returned.
func (s *Schema) Validate(v any) []Error {
	var errs []Error
	s.validate(v, nil, &errs)
	return errs
}

// valid reports whether v satisfies s, without collecting faults.
func (s *Schema) valid(v any) bool {
	var errs []Error
	s.validate(v, nil, &errs)
	return len(errs) == 0
}

func (s *Schema) validate(v any, loc []string, out *[]Error) {
	fail := func(k Kind) { *out = append(*out, Error{Location: slices.Clone(loc), Kind: k}) }
	if s.never {
		fail(&kind.FalseSchema{})
		return
	}
	t := typeName(v)
	switch t {
	case "null", "boolean", "number", "string", "array", "object":
	default:
		fail(&kind.InvalidJsonValue{Value: v})
		return
	}
	if len(s.types) > 0 && !slices.Contains(s.types, t) && (t != "number" || !slices.Contains(s.types, "integer") || !isInteger(v)) {
		fail(&kind.Type{Got: t, Want: s.types})
		return
	}
	if s.hasConst {
		ok, bad := equal(v, s.constVal)
		if bad != nil {
			fail(bad)
			return
		}
		if !ok {
			fail(&kind.Const{Got: v, Want: s.constVal})
			return
		}
	}
	if s.hasEnum {
		matched := false
		for _, e := range s.enum {
			ok, bad := equal(v, e)
			if bad != nil {
				fail(bad)
				return
			}
			if ok {
				matched = true
				break
			}
		}
		if !matched {
			fail(&kind.Enum{Got: v, Want: s.enum})
			return
		}
	}
	switch val := v.(type) {
	case map[string]any:
		s.validateObject(val, loc, out, fail)
	case []any:
		s.validateArray(val, loc, out, fail)
	case string:
		s.validateString(val, fail)
	case nil, bool:
	default:
		s.validateNumber(v, fail)
	}
	s.validateApplicators(v, loc, out, fail)
}

func (s *Schema) validateObject(obj map[string]any, loc []string, out *[]Error, fail func(Kind)) {
	if s.minProperties >= 0 && len(obj) < s.minProperties {
		fail(&kind.MinProperties{Got: len(obj), Want: s.minProperties})
	}
	if s.maxProperties >= 0 && len(obj) > s.maxProperties {
		fail(&kind.MaxProperties{Got: len(obj), Want: s.maxProperties})
	}
	var missing []string
	for _, name := range s.required {
		if _, ok := obj[name]; !ok {
			missing = append(missing, name)
		}
	}
	if missing != nil {
		fail(&kind.Required{Missing: missing})
	}
	var extra []string
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		sub, ok := s.properties[name]
		if !ok {
			sub = s.additional
		}
		switch {
		case sub == nil:
		case !ok && sub.never:
			extra = append(extra, name)
		default:
			sub.validate(obj[name], append(loc, name), out)
		}
	}
	if extra != nil {
		fail(&kind.AdditionalProperties{Properties: extra})
	}
}

func (s *Schema) validateArray(arr []any, loc []string, out *[]Error, fail func(Kind)) {
	if s.minItems >= 0 && len(arr) < s.minItems {
		fail(&kind.MinItems{Got: len(arr), Want: s.minItems})
	}
	if s.maxItems >= 0 && len(arr) > s.maxItems {
		fail(&kind.MaxItems{Got: len(arr), Want: s.maxItems})
	}
	if s.uniqueItems && len(arr) > 1 {
		if i, j, bad := duplicates(arr); bad != nil {
			fail(bad)
		} else if i >= 0 {
			fail(&kind.UniqueItems{Duplicates: [2]int{i, j}})
		}
	}
	if s.items != nil {
		for i, e := range arr {
			s.items.validate(e, append(loc, strconv.Itoa(i)), out)
		}
	}
}

func (s *Schema) validateString(str string, fail func(Kind)) {
	if s.minLength >= 0 || s.maxLength >= 0 {
		n := utf8.RuneCountInString(str) // JSON Schema counts characters, not bytes
		if s.minLength >= 0 && n < s.minLength {
			fail(&kind.MinLength{Got: n, Want: s.minLength})
		}
		if s.maxLength >= 0 && n > s.maxLength {
			fail(&kind.MaxLength{Got: n, Want: s.maxLength})
		}
	}
	if s.pattern != nil && !s.pattern.MatchString(str) {
		fail(&kind.Pattern{Got: str, Want: s.pattern.String()})
	}
}

func (s *Schema) validateNumber(v any, fail func(Kind)) {
	n, _ := number(v)
	if s.minimum != nil && n.Cmp(s.minimum) < 0 {
		fail(&kind.Minimum{Got: n, Want: s.minimum})
	}
	if s.maximum != nil && n.Cmp(s.maximum) > 0 {
		fail(&kind.Maximum{Got: n, Want: s.maximum})
	}
	if s.exclusiveMinimum != nil && n.Cmp(s.exclusiveMinimum) <= 0 {
		fail(&kind.ExclusiveMinimum{Got: n, Want: s.exclusiveMinimum})
	}
	if s.exclusiveMaximum != nil && n.Cmp(s.exclusiveMaximum) >= 0 {
		fail(&kind.ExclusiveMaximum{Got: n, Want: s.exclusiveMaximum})
	}
	if s.multipleOf != nil && !new(big.Rat).Quo(n, s.multipleOf).IsInt() {
		fail(&kind.MultipleOf{Got: n, Want: s.multipleOf})
	}
}

// validateApplicators checks not, allOf, anyOf and oneOf, whatever the keywords above found.
func (s *Schema) validateApplicators(v any, loc []string, out *[]Error, fail func(Kind)) {
	if s.not != nil && s.not.valid(v) {
		fail(&kind.Not{})
	}
	for _, sub := range s.allOf {
		sub.validate(v, loc, out)
	}
	if len(s.anyOf) > 0 {
		var faults []Error
		matched := false
		for _, sub := range s.anyOf {
			before := len(faults)
			sub.validate(v, loc, &faults)
			if len(faults) == before {
				matched = true
				break
			}
		}
		if !matched {
			*out = append(*out, faults...)
		}
	}
	if len(s.oneOf) > 0 {
		var faults []Error
		first := -1
		for i, sub := range s.oneOf {
			if first >= 0 {
				if sub.valid(v) {
					fail(&kind.OneOf{Subschemas: []int{first, i}})
					return
				}
				continue
			}
			before := len(faults)
			sub.validate(v, loc, &faults)
			if len(faults) == before {
				first = i
			}
		}
		if first < 0 {
			*out = append(*out, faults...)
		}
	}
}

// isInteger reports whether a number has no fractional part (1.0 is an integer in JSON Schema).
func isInteger(v any) bool {
	n, ok := number(v)
	return ok && n.IsInt()
}

// equal compares JSON values as JSON Schema does: numbers by value (1 equals 1.0), objects by their members.
func equal(a, b any) (bool, Kind) {
	ka, bad := key(a)
	if bad != nil {
		return false, bad
	}
	kb, bad := key(b)
	if bad != nil {
		return false, bad
	}
	return ka == kb, nil
}

// duplicates finds the first item equal to an earlier one: the earlier's index, its index; -1, -1 if none.
func duplicates(arr []any) (int, int, Kind) {
	seen := make(map[string]int, len(arr))
	for i, e := range arr {
		k, bad := key(e)
		if bad != nil {
			return -1, -1, bad
		}
		if j, ok := seen[k]; ok {
			return j, i, nil
		}
		seen[k] = i
	}
	return -1, -1, nil
}

// key is a canonical text of a JSON value: equal values, and only they, have the same key.
func key(v any) (string, Kind) {
	var b strings.Builder
	if bad := writeKey(&b, v); bad != nil {
		return "", bad
	}
	return b.String(), nil
}

func writeKey(b *strings.Builder, v any) Kind {
	switch t := v.(type) {
	case nil:
		b.WriteString("z")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case string:
		b.WriteString(strconv.Quote(t))
	case []any:
		b.WriteByte('[')
		for _, e := range t {
			if bad := writeKey(b, e); bad != nil {
				return bad
			}
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for _, k := range slices.Sorted(maps.Keys(t)) {
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			if bad := writeKey(b, t[k]); bad != nil {
				return bad
			}
			b.WriteByte(',')
		}
		b.WriteByte('}')
	default:
		n, ok := number(v)
		if !ok {
			return &kind.InvalidJsonValue{Value: v}
		}
		b.WriteString("n" + n.RatString())
	}
	return nil
}
