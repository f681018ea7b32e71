package webhook

import (
	"encoding/json"
	"regexp"

	"github.com/continuums/attest/admission"
)

// DefaultMaxLoggedInput caps one recorded input; a larger one is logged as truncated (a partial object could not
// be replayed faithfully).
const DefaultMaxLoggedInput = 64 << 10

// LoggedInput is what the decision log records of a request for `attest policy replay`: the request as the
// policies saw it, and the objects with Secret-like values redacted.
type LoggedInput struct {
	Request   admission.Request `json:"request"`
	Object    map[string]any    `json:"object,omitempty"`
	OldObject map[string]any    `json:"old_object,omitempty"`
	Truncated int               `json:"truncated_bytes,omitempty"`
}

// secretName matches environment variable and key names whose values must never reach a log.
var secretName = regexp.MustCompile(`(?i)(pass|secret|token|key|credential|auth|cert|private)`)

// Redacted marks a value ATTEST removed before logging.
const Redacted = "<redacted>"

// recordInput copies the request for the log, redacted and capped at max bytes.
func recordInput(in admission.Input, max int) LoggedInput {
	rec := LoggedInput{Request: in.Request, Object: redact(in.Object), OldObject: redact(in.OldObject)}
	if b, err := json.Marshal(rec); err != nil || len(b) > max {
		return LoggedInput{Request: in.Request, Truncated: len(b)}
	}
	return rec
}

// redact returns a copy of obj without Secret data, the last-applied annotation (a full copy of the object),
// or values of Secret-like environment variables.
func redact(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	out, _ := redactValue(obj, "").(map[string]any)
	if kind, _ := obj["kind"].(string); kind == "Secret" {
		for _, k := range []string{"data", "stringData"} {
			if m, ok := out[k].(map[string]any); ok {
				for key := range m {
					m[key] = Redacted
				}
			}
		}
	}
	if md, ok := out["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		}
	}
	return out
}

// redactValue deep-copies v; an env entry {name, value} whose name looks secret loses its value.
func redactValue(v any, parent string) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[k] = redactValue(val, k)
		}
		if name, ok := t["name"].(string); ok && parent == "env" {
			if _, has := t["value"]; has && secretName.MatchString(name) {
				out["value"] = Redacted
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = redactValue(val, parent)
		}
		return out
	default:
		return v
	}
}
