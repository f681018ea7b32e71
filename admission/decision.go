package admission

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
)

// Outcome is a policy's result for one request, as counted in attest_policy_evaluations_total.
type Outcome string

// Outcomes of one policy evaluation.
const (
	OutcomePassed   Outcome = "passed"
	OutcomeFailed   Outcome = "failed"
	OutcomeExempted Outcome = "exempted"
	OutcomeError    Outcome = "error"
)

// PolicyResult is what one policy decided, for metrics and the decision log.
type PolicyResult struct {
	Policy string
	// Engine evaluated the policy: "opa", "gatekeeper" or "cedar" (policies.Policy.Engine).
	Engine   string
	Mode     policies.Mode
	Outcome  Outcome
	Findings []policies.Finding
	Err      error
	Duration time.Duration
	// Digest identifies the policy's source text.
	Digest string
}

// Violation is one finding placed in the request: which policy, where, what, how to fix it, and whether it denies.
type Violation struct {
	Policy    string            `json:"policy"`
	Mode      policies.Mode     `json:"mode"`
	Severity  policies.Severity `json:"severity"`
	Path      string            `json:"path,omitempty"`
	Container string            `json:"container,omitempty"`
	Message   string            `json:"message"`
	Fix       string            `json:"fix,omitempty"`
	// Denied is true for findings of enforced policies; audit findings and `warn` rules only warn.
	Denied bool `json:"denied"`
	// Warning marks findings of a policy's `warn` rule.
	Warning bool `json:"warning,omitempty"`
	// RecordOnly violations never deny and are no warning: audit annotations, metrics and decision log only.
	RecordOnly bool `json:"recordOnly,omitempty"`
	// EnforceFrom is set while an enforcing policy audits until its enforceAfter.
	EnforceFrom time.Time `json:"enforceFrom,omitzero"`
	// Preexisting marks a violation already present before this UPDATE (existingWorkloads: audit): it warns.
	Preexisting bool `json:"preexisting,omitempty"`
	// Err marks a policy that could not be evaluated; no exemption waives it (fail closed).
	Err bool `json:"-"`
	// Exemption is what waived the violation; it is still reported, as a warning.
	Exemption *exemptions.Exemption `json:"exemption,omitempty"`
	// ExemptionNotes say why matching exemptions were ignored (unauthorized, expired, pending, malformed).
	ExemptionNotes []string `json:"exemptionNotes,omitempty"`
}

// String is the one message format: `[<policy>] <path> (<container>): <problem>; <fix>`.
func (v Violation) String() string { return v.text("") }

// text is String after prefix and ": " (none when prefix is empty), built in one allocation.
func (v Violation) text(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(v.Policy) + len(v.Path) + len(v.Container) + len(v.Message) + len(v.Fix) + 14)
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteString(": ")
	}
	b.WriteByte('[')
	b.WriteString(v.Policy)
	b.WriteByte(']')
	if v.Path != "" {
		b.WriteByte(' ')
		b.WriteString(v.Path)
	}
	if v.Container != "" {
		b.WriteString(" (")
		b.WriteString(v.Container)
		b.WriteByte(')')
	}
	b.WriteString(": ")
	b.WriteString(v.Message)
	if v.Fix != "" {
		b.WriteString("; ")
		b.WriteString(v.Fix)
	}
	b.WriteString(exemptionSuffix(v.ExemptionNotes))
	return b.String()
}

// warningText is the violation as a warning: the same text as a denial, prefixed with why it does not deny.
func (v Violation) warningText() string {
	if v.Exemption != nil {
		return v.text("exempted by " + v.Exemption.Describe())
	}
	prefix := string(v.Mode)
	switch {
	case v.Warning:
		prefix = "warn"
	case v.Preexisting:
		prefix = "existing (present before this update, not denied; new violations are)"
	case !v.EnforceFrom.IsZero():
		prefix = "audit (will be denied from " + v.EnforceFrom.UTC().Format(time.RFC3339) + ")"
	}
	return v.text(prefix)
}

// Decision is the answer to one admission request. Code follows HTTP: 200 allowed, 403 denied, 400 the request
// could not be read, 500 ATTEST itself failed.
type Decision struct {
	Allowed    bool
	Code       int32
	Message    string
	Warnings   []string
	Violations []Violation
	Results    []PolicyResult
	// AuditAnnotations are keyed without prefix: the API server prefixes the webhook name (attest.continuu.ms),
	// so they land in the audit log as attest.continuu.ms/decision and attest.continuu.ms/violations.
	AuditAnnotations map[string]string
	Duration         time.Duration
	// Patches are the mutating path's JSON Patch operations.
	Patches []PatchOp
	// Sampled lists the policies whose sample rule asked for this evaluation's input to be recorded.
	Sampled []string
	// NotEvaluated says why the request was allowed without running any policy (a status write that changes
	// nothing policies read, an eviction); it is also the audit annotation AnnotationNotEvaluated.
	NotEvaluated string
}

// Audit annotation keys and the decision values they carry.
const (
	AnnotationDecision   = "decision"
	AnnotationViolations = "violations"

	DecisionAllowed = "allowed"
	DecisionWarned  = "warned"
	DecisionDenied  = "denied"
	DecisionError   = "error"
)

// Limits that keep our text whole through the API server, which truncates warnings over 256 characters and
// drops warnings once 4 KiB of them have been added by all webhooks.
const (
	maxWarningLen       = 256
	maxWarningBytes     = 3 * 1024
	maxWarnings         = 12
	maxDenialLines      = 20
	maxAnnotatedEntries = 20
)

// finish renders messages, warnings and audit annotations from the violations.
func (d *Decision) finish() {
	var denials, warnings []string
	for _, v := range d.Violations {
		switch {
		case v.Denied:
			denials = append(denials, v.String())
		case !v.RecordOnly:
			warnings = append(warnings, v.warningText())
		}
	}
	d.Warnings = CapWarnings(append(warnings, d.Warnings...))
	decision := DecisionAllowed
	switch {
	case len(denials) > 0:
		d.Allowed, d.Code = false, 403
		d.Message = capLines(denials, maxDenialLines, "violations")
		decision = DecisionDenied
	case len(d.Warnings) > 0:
		d.Allowed, d.Code = true, 200
		decision = DecisionWarned
	default:
		d.Allowed, d.Code = true, 200
	}
	d.AuditAnnotations = map[string]string{AnnotationDecision: decision}
	if len(d.Violations) > 0 {
		d.AuditAnnotations[AnnotationViolations] = violationsAnnotation(d.Violations)
	}
}

// capLines joins lines, listing at most max and summarising the rest.
func capLines(lines []string, max int, noun string) string {
	if len(lines) <= max {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:max], "\n") + "\nand " + strconv.Itoa(len(lines)-max) + " more " + noun +
		" (run `attest policy check` on the manifest to list them all)"
}

// smallWarningList is the most warnings deduplicated without a set.
const smallWarningList = 16

// CapWarnings deduplicates, sanitises and truncates warnings so that every one we send arrives whole (the API
// server drops warnings with control characters and cuts them at 256 characters), and summarises what does not fit.
func CapWarnings(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	// A handful of warnings, as most admissions have, are deduplicated by scanning; many through a set.
	var seen map[string]bool
	if len(in) > smallWarningList {
		seen = make(map[string]bool, len(in))
	}
	uniq := make([]string, 0, len(in))
	for _, w := range in {
		w = truncate(sanitize(w), maxWarningLen)
		if seen == nil && slices.Contains(uniq, w) || seen[w] {
			continue
		}
		if seen != nil {
			seen[w] = true
		}
		uniq = append(uniq, w)
	}
	const summaryRoom = 96
	out := make([]string, 0, min(len(uniq), maxWarnings))
	total := 0
	for i, w := range uniq {
		rest := len(uniq) - i
		if rest > 1 && (len(out) == maxWarnings-1 || total+len(w)+summaryRoom > maxWarningBytes) {
			out = append(out, "and "+strconv.Itoa(rest)+" more warnings (see the decision log or run `attest policy check`)")
			return out
		}
		out = append(out, w)
		total += len(w)
	}
	return out
}

// sanitize removes control characters, which the API server refuses in warnings.
func sanitize(s string) string {
	if !mayHoldControl(s) || strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// mayHoldControl is false when s certainly holds no control character: those are the bytes below 0x20, 0x7f, and
// U+0080-U+009F, which UTF-8 writes after a 0xc2 byte. A byte scan, as warnings are checked on every admission.
func mayHoldControl(s string) bool {
	for i := range len(s) {
		if b := s[i]; b < 0x20 || b == 0x7f || b == 0xc2 {
			return true
		}
	}
	return false
}

// violationsAnnotation is a compact JSON list for the audit log, capped in entries: what encoding/json writes for
// a list of {policy, path (omitted when empty), mode, denied, exempted (omitted when empty)}, written directly
// (the reflection was a sixth of a ReplicaSet Pod's admission; TestViolationsAnnotationAsEncodingJSON compares).
func violationsAnnotation(vs []Violation) string {
	n := min(len(vs), maxAnnotatedEntries)
	var stack [1024]byte // most lists fit: the only allocation is the string
	b := append(stack[:0], '[')
	for i, v := range vs[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"policy":`...)
		b = appendJSONString(b, v.Policy)
		if v.Path != "" {
			b = append(b, `,"path":`...)
			b = appendJSONString(b, v.Path)
		}
		b = append(b, `,"mode":`...)
		b = appendJSONString(b, string(v.Mode))
		b = append(b, `,"denied":`...)
		b = strconv.AppendBool(b, v.Denied)
		if v.Exemption != nil {
			if exempted := v.Exemption.Source + " " + v.Exemption.Name; exempted != "" {
				b = append(b, `,"exempted":`...)
				b = appendJSONString(b, exempted)
			}
		}
		b = append(b, '}')
	}
	if len(vs) > n {
		b = append(append(append(b, `,{"more":`...), strconv.Itoa(len(vs)-n)...), '}')
	}
	b = append(b, ']')
	return string(b)
}

// appendJSONString appends s quoted as encoding/json quotes strings: HTML's <, > and & escaped, control characters
// escaped (\b, \f, \n, \r, \t by name), invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
