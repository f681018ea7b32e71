package policies

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/continuums/attest/policies/paramschema"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// paramSchema validates a policy's parameters against the JSON schema its METADATA declares.
type paramSchema struct {
	props    map[string]any // each parameter's schema, by name
	defaults map[string]any
	known    []string // parameter names, sorted, for messages

	once   sync.Once
	schema *paramschema.Schema
	err    error
}

// compileParamSchema builds the schema of the parameters object (declared properties only, each as declared),
// compiles it and checks the defaults against it.
func compileParamSchema(md Metadata) (*paramSchema, error) {
	ps, err := newParamSchema(md)
	if err != nil {
		return nil, err
	}
	if _, err := ps.compiled(); err != nil {
		return nil, err
	}
	return ps, nil
}

// newParamSchema reads the parameters' schemas and defaults; the schema is compiled when first needed.
func newParamSchema(md Metadata) (*paramSchema, error) {
	props := map[string]any{}
	defaults := map[string]any{}
	for name, s := range md.Parameters {
		prop, ok := s.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("METADATA custom.parameters.%s: expected a JSON schema object, got %T", name, s)
		}
		props[name] = prop
		if d, ok := prop["default"]; ok {
			defaults[name] = d
		}
	}
	known := make([]string, 0, len(props))
	for name := range props {
		known = append(known, name)
	}
	sort.Strings(known)
	return &paramSchema{
		props:    props,
		defaults: defaults,
		known:    known,
	}, nil
}

// compiled compiles the schema once and checks the defaults against it.
func (ps *paramSchema) compiled() (*paramschema.Schema, error) {
	ps.once.Do(func() {
		sch, err := paramschema.Parameters(ps.props)
		if err != nil {
			ps.err = fmt.Errorf("METADATA custom.parameters.%w", err)
			return
		}
		if err := validateWith(sch, ps.known, ps.defaults); err != nil {
			ps.err = fmt.Errorf("METADATA custom.parameters defaults: %w", err)
			return
		}
		ps.schema = sch
	})
	return ps.schema, ps.err
}

// validate checks params (JSON-shaped: map[string]any, []any, float64, string, bool, nil) and names the first
// field at fault in the same dotted form users write in config, e.g. "trusted_registries[0]: want string, got number".
// No parameters are always valid: the schema of the parameters object declares properties and forbids others, but
// requires none.
func (ps *paramSchema) validate(params map[string]any) error {
	if len(params) == 0 {
		return nil
	}
	sch, err := ps.compiled()
	if err != nil {
		return err
	}
	return validateWith(sch, ps.known, params)
}

func validateWith(sch *paramschema.Schema, knownParams []string, params map[string]any) error {
	if params == nil {
		params = map[string]any{}
	}
	faults := sch.Validate(params)
	if len(faults) == 0 {
		return nil
	}
	var pe ParamsError
	printer := message.NewPrinter(language.English)
	for _, leaf := range faults {
		if ap, ok := leaf.Kind.(*kind.AdditionalProperties); ok {
			known := make([]string, 0, len(knownParams))
			known = append(known, knownParams...)
			for _, name := range ap.Properties {
				msg := "unknown parameter"
				if len(known) > 0 {
					msg += " (this policy takes " + strings.Join(known, ", ") + ")"
				} else {
					msg += " (this policy takes none)"
				}
				pe.Problems = append(pe.Problems, ParamProblem{Field: fieldPath(append(slices.Clone(leaf.Location), name)), Message: msg})
			}
			continue
		}
		pe.Problems = append(pe.Problems, ParamProblem{Field: fieldPath(leaf.Location), Message: leaf.Kind.LocalizedString(printer)})
	}
	sort.SliceStable(pe.Problems, func(i, j int) bool { return pe.Problems[i].Field < pe.Problems[j].Field })
	return &pe
}

// ParamProblem is one parameter at fault.
type ParamProblem struct {
	// Field is the dotted path below the parameters, e.g. "trusted_registries[0]".
	Field   string
	Message string
}

// ParamsError lists every parameter at fault; Prefixed renders it under the caller's field name.
type ParamsError struct {
	Problems []ParamProblem
}

func (e *ParamsError) Error() string { return e.Prefixed("") }

// Prefixed renders "prefix.field: message" for each problem, joined by "; ".
func (e *ParamsError) Prefixed(prefix string) string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		field := p.Field
		switch {
		case prefix != "" && field != "":
			field = prefix + "." + field
		case prefix != "":
			field = prefix
		}
		if field == "" {
			msgs[i] = p.Message
		} else {
			msgs[i] = field + ": " + p.Message
		}
	}
	return strings.Join(msgs, "; ")
}

// withDefaults returns params with every missing declared parameter set to its default.
func (ps *paramSchema) withDefaults(params map[string]any) map[string]any {
	out := maps.Clone(ps.defaults)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, params)
	return out
}

// fieldPath renders ["trusted_registries","0"] as "trusted_registries[0]".
func fieldPath(loc []string) string {
	var b strings.Builder
	for i, seg := range loc {
		if _, err := strconv.Atoi(seg); err == nil && i > 0 {
			b.WriteString("[" + seg + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}
