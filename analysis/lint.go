package analysis

import (
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/policies"
)

// Finding is one lint suggestion at its place.
type Finding struct {
	Check   string `json:"check"`
	Policy  string `json:"policy"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
	// HotPath marks what costs time on every admission (the suggestions `attest policy optimize` shows).
	HotPath bool `json:"hotPath,omitempty"`
}

// Lint checks: what a reviewer of an ATTEST policy would ask for. (Regal, the maintained Rego linter, is not
// on the Go module proxy this project builds from; these are ATTEST's own.)
const (
	CheckMissingMetadata    = "missing-metadata"
	CheckMissingDescription = "missing-description"
	CheckMessageWithoutFix  = "message-without-fix"
	CheckWorkBeforeFilter   = "work-before-conditions"
)

// messageBuiltins build text: work a rule should do only once it knows it fires.
var messageBuiltins = map[string]bool{"sprintf": true, "concat": true, "format_int": true, "json.marshal": true, "yaml.marshal": true, "strings.replace_n": true}

// Lint reads every source and reports, per policy: a missing METADATA block or description (the catalogue,
// `attest policy list` and SARIF rules are made from it), denying rules whose messages carry no fix when the
// policy has no remediation either, and rule bodies that build their message before the conditions that decide
// whether the rule fires (OPA evaluates a body in order, so every input that fails a later condition pays for it).
func Lint(sources []policies.Source) ([]Finding, error) {
	var out []Finding
	for _, src := range sources {
		mod, err := policies.ParseSource(src)
		if err != nil {
			return nil, err
		}
		out = append(out, lintModule(src.Name, mod)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}

func lintModule(file string, mod *ast.Module) []Finding {
	var ann *ast.Annotations
	for _, a := range mod.Annotations {
		if a.Scope == "package" || a.Scope == "subpackages" {
			ann = a
			break
		}
	}
	name := strings.TrimPrefix(mod.Package.Path.String(), "data.")
	pkgLine := mod.Package.Location.Row
	var out []Finding
	remediation := ""
	if ann == nil {
		out = append(out, Finding{Check: CheckMissingMetadata, Policy: name, File: file, Line: pkgLine,
			Message: "no # METADATA block: add one with title, description and custom: name, severity, mode and remediation (the catalogue, attest policy list and SARIF rules are made from it)"})
	} else {
		if n, ok := ann.Custom["name"].(string); ok && n != "" {
			name = n
		}
		if r, ok := ann.Custom["remediation"].(string); ok {
			remediation = r
		}
		if strings.TrimSpace(ann.Description) == "" {
			out = append(out, Finding{Check: CheckMissingDescription, Policy: name, File: file, Line: ann.Location.Row,
				Message: "METADATA has no description: say what the policy enforces and why, for attest policy list and the SARIF rule's help"})
		}
	}
	for _, r := range mod.Rules {
		rule := r.Head.Ref()[0].Value.String()
		if rule != "violation" && rule != "deny" {
			continue
		}
		if remediation == "" && !hasFix(r.Head) {
			out = append(out, Finding{Check: CheckMessageWithoutFix, Policy: name, File: file, Line: r.Location.Row,
				Message: fmt.Sprintf("%s reports a message without a fix: add \"fix\" to the object it reports, or custom.remediation to METADATA, so that the person at kubectl apply knows what to change", rule)})
		}
		if line, call := workBeforeConditions(r.Body); line > 0 {
			out = append(out, Finding{Check: CheckWorkBeforeFilter, Policy: name, File: file, Line: line, HotPath: true,
				Message: fmt.Sprintf("%s builds its message (%s) before a condition that decides whether it fires: move it to the end of the body, so that inputs the rule does not deny skip it", rule, call)})
		}
	}
	return out
}

// hasFix reports whether a rule head reports an object with a "fix" key (or, for the documents' forms, msg with
// fix).
func hasFix(h *ast.Head) bool {
	v := h.Key
	if v == nil {
		v = h.Value
	}
	if v == nil {
		return false
	}
	obj, ok := v.Value.(ast.Object)
	if !ok {
		return false
	}
	return obj.Get(ast.StringTerm("fix")) != nil
}

// workBeforeConditions finds, in a rule body, a message-building call whose result no later expression reads
// but which a later condition that can fail (a comparison, a negation, a membership test) follows: its line and
// the built-in's name. (Text a later condition reads, such as an annotation key built with concat, is needed.)
func workBeforeConditions(body ast.Body) (int, string) {
	for i, e := range body {
		call := messageCall(e)
		if call == "" {
			continue
		}
		var result ast.Var
		if terms, ok := e.Terms.([]*ast.Term); ok && e.IsAssignment() && len(terms) == 3 {
			result, _ = terms[1].Value.(ast.Var)
		}
		laterCondition, read := false, false
		for _, later := range body[i+1:] {
			if isCondition(later) {
				laterCondition = true
			}
			ast.WalkVars(later, func(v ast.Var) bool {
				if result != "" && v == result {
					read = true
				}
				return read
			})
		}
		if laterCondition && !read {
			return e.Location.Row, call
		}
	}
	return 0, ""
}

// messageCall names the message-building built-in an expression calls (msg := sprintf(...)).
func messageCall(e *ast.Expr) string {
	found := ""
	ast.WalkTerms(e, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) > 0 && messageBuiltins[call[0].String()] {
			found = call[0].String()
		}
		return found != ""
	})
	if found == "" && e.IsCall() && messageBuiltins[e.Operator().String()] {
		found = e.Operator().String()
	}
	return found
}

// isCondition reports whether an expression can fail for an input: a comparison, a negation or a membership
// test (an assignment from a call that always succeeds is not one).
func isCondition(e *ast.Expr) bool {
	if e.Negated {
		return true
	}
	if e.IsCall() {
		switch e.Operator().String() {
		case "lt", "lte", "gt", "gte", "equal", "neq", "internal.member_2", "startswith", "endswith", "contains", "regex.match":
			return true
		}
	}
	return false
}
