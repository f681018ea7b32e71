package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
)

// PatchOp is one JSON Patch (RFC 6902) operation on the object under admission, as a policy's `patch` rule
// returns it. Only the operations that need no source path are accepted: add, replace, remove and test.
type PatchOp struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	// Value is the JSON value to add, replace with or test against; unused by remove.
	Value any `json:"value,omitempty"`
}

// MarshalJSON writes value for every operation but remove, even when it is null: {"op":"add","value":null} is
// an operation, {"op":"add"} is not.
func (o PatchOp) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	return json.Marshal(struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}{o.Op, o.Path, o.Value})
}

// HasPatch reports whether the policy defines a `patch` rule, i.e. whether it can run with `mutate: true`.
func (p *Policy) HasPatch() bool {
	c, err := p.compiled()
	return err == nil && c.patch != nil
}

// HasSample reports whether the policy defines a `sample` rule.
func (p *Policy) HasSample() bool {
	c, err := p.compiled()
	return err == nil && c.sample != nil
}

// Patch evaluates the policy's `patch` rule over doc: the JSON Patch operations, relative to input.resource, that
// make the object compliant. A policy without the rule, or whose rule is undefined for doc, patches nothing. The
// rule may be a set (operations that do not depend on each other's order) or an array (applied in order).
func (p *Policy) Patch(ctx context.Context, doc *Document, s Settings) ([]PatchOp, error) {
	c, err := p.compiled()
	if err != nil {
		return nil, fmt.Errorf("evaluate rule %s of policy %s: %w", patchRule, p.Name, err)
	}
	if c.patch == nil {
		return nil, nil
	}
	v, ok, err := p.evalRule(ctx, c, c.patch, patchRule, doc, s)
	if err != nil || !ok {
		return nil, err
	}
	raw, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy %s: rule patch must be a set or an array of JSON Patch operations, got %s", p.Name, jsonType(v))
	}
	ops := make([]PatchOp, 0, len(raw))
	for i, item := range raw {
		op, err := patchOp(item)
		if err != nil {
			return nil, fmt.Errorf("policy %s: rule patch: operation %d: %w", p.Name, i, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// Sampled evaluates the policy's `sample` rule: true asks the decision log to record this evaluation's full input.
// A policy without the rule costs nothing here; an undefined rule means false.
func (p *Policy) Sampled(ctx context.Context, doc *Document, s Settings) (bool, error) {
	c, err := p.compiled()
	if err != nil {
		return false, fmt.Errorf("evaluate rule %s of policy %s: %w", sampleRule, p.Name, err)
	}
	if c.sample == nil {
		return false, nil
	}
	v, ok, err := p.evalRule(ctx, c, c.sample, sampleRule, doc, s)
	if err != nil || !ok {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("policy %s: rule sample must be a boolean, got %s", p.Name, jsonType(v))
	}
	return b, nil
}

// evalRule runs the prepared query of one optional rule; ok is false when the rule is undefined for doc.
func (p *Policy) evalRule(ctx context.Context, c *compiled, q *rego.PreparedEvalQuery, rule string, doc *Document, s Settings) (any, bool, error) {
	values, err := c.evalRules(ctx, q, []string{rule}, ruleInput{doc: doc, reads: c.reads, params: s.paramsTerm()}, p.noPlan.Load())
	if err == nil && values != nil {
		var v any
		if v, err = values.json(0, rule); err == nil {
			return v, true, nil
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("evaluate rule %s of policy %s: %w", rule, p.Name, err)
	}
	return nil, false, nil
}

// patchOp validates one operation: a known op, a JSON pointer path, a value where the op needs one, nothing else.
func patchOp(item any) (PatchOp, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return PatchOp{}, fmt.Errorf("want an object {op, path, value}, got %s", jsonType(item))
	}
	var op PatchOp
	for k, v := range m {
		switch k {
		case "op", "path":
			s, ok := v.(string)
			if !ok {
				return PatchOp{}, fmt.Errorf("%s must be a string, got %s", k, jsonType(v))
			}
			if k == "op" {
				op.Op = s
			} else {
				op.Path = s
			}
		case "value":
			op.Value = v
		default:
			return PatchOp{}, fmt.Errorf("unknown field %q (an operation has op, path and value)", k)
		}
	}
	_, hasValue := m["value"]
	switch op.Op {
	case "add", "replace", "test":
		if !hasValue {
			return PatchOp{}, fmt.Errorf("op %s needs a value", op.Op)
		}
	case "remove":
		if hasValue {
			return PatchOp{}, fmt.Errorf("op remove takes no value")
		}
	case "":
		return PatchOp{}, fmt.Errorf("op is missing (want add, replace, remove or test)")
	default:
		return PatchOp{}, fmt.Errorf("unknown op %q (want add, replace, remove or test)", op.Op)
	}
	if !strings.HasPrefix(op.Path, "/") {
		return PatchOp{}, fmt.Errorf("path %q is not a JSON pointer into the object: it must start with \"/\"", op.Path)
	}
	if err := checkPointer(op.Path); err != nil {
		return PatchOp{}, fmt.Errorf("path %q: %w", op.Path, err)
	}
	return op, nil
}

// checkPointer rejects escapes RFC 6901 does not define: "~" must be followed by 0 or 1.
func checkPointer(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Errorf(`"~" must be escaped as "~0" ("/" as "~1")`)
		}
	}
	return nil
}

// jsonType names the JSON type of a value as OPA returns it, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
