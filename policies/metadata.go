package policies

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Mode is what a violation of a policy does to the request.
type Mode string

// The three modes of every policy.
const (
	ModeEnforce Mode = "enforce"
	ModeAudit   Mode = "audit"
	ModeOff     Mode = "off"
)

// ParseMode accepts the modes and the policy documents' enforcement words (strict → enforce, warn → audit).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "enforce", "strict", "deny":
		return ModeEnforce, nil
	case "audit", "warn", "dryrun":
		return ModeAudit, nil
	case "off", "disabled":
		return ModeOff, nil
	}
	return "", fmt.Errorf("unknown mode %q (want enforce, audit or off; strict and warn are accepted too)", s)
}

// Severity ranks violations for alerting.
type Severity string

// Severities, most severe first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// ParseSeverity validates a severity word.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(strings.ToLower(strings.TrimSpace(s))); v {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
		return v, nil
	}
	return "", fmt.Errorf("unknown severity %q (want critical, high, medium or low)", s)
}

// Metadata is a policy's catalogue entry, read from the `# METADATA` block of its package: one source of truth
// for `attest policy list`, messages and defaults.
type Metadata struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Severity    Severity `json:"severity"`
	DefaultMode Mode     `json:"defaultMode"`
	// Remediation is the fix appended to every message of the policy unless a violation names its own.
	Remediation string `json:"remediation,omitempty"`
	// Parameters is the JSON schema of each parameter, by name.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Compliance maps a framework ("soc2", "gdpr", "hipaa") to the IDs of the controls the policy serves
	// ("CC6.1", "Art. 30", "164.312(b)"), from METADATA custom.compliance.
	Compliance map[string][]string `json:"compliance,omitempty"`
	// Operations are the admission operations the policy decides when it decides more than CREATE and UPDATE
	// (a Cedar forbid on delete): DELETE and CONNECT requests are evaluated only by the policies that list them.
	Operations []string `json:"operations,omitempty"`
	// OperationKinds narrows an operation of Operations to the kinds it is judged for ("apps/Deployment", core
	// kinds "/Pod"); an operation it does not list is judged for every kind.
	OperationKinds map[string][]string `json:"operationKinds,omitempty"`
	// WriteKinds are kinds beyond the webhook's workload kinds whose CREATE and UPDATE the policy judges
	// ("/ConfigMap", "rbac.authorization.k8s.io/RoleBinding"): ATTEST's webhook rules are widened to send them.
	WriteKinds []string `json:"writeKinds,omitempty"`
	// Package is the Rego package, e.g. "attest.library.no_privileged".
	Package string `json:"package"`
	// File is where the policy came from.
	File string `json:"file"`
	// Digest identifies the policy's source text, so a replayed decision names the exact policy that made it.
	Digest string `json:"digest"`
}

// constraintName is "<Kind>/<name>": a Kubernetes kind (a DNS-1035 label but for case, as a CRD's kind) and an
// object name (a DNS-1123 subdomain); their lengths are checked in ValidName. Compiled when first needed: every
// command starts faster for not compiling at start what few of them use.
var constraintName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z](?:[-A-Za-z0-9]*[A-Za-z0-9])?)/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)$`)
})

// IsLabel tells whether s is a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters): the
// names of Rego policies, frameworks, sources and Cedar policy sets.
func IsLabel(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }

// ValidName tells whether s can name a policy: a Rego policy's name (lower-case letters, digits and '-', at most
// 63 characters), or a Gatekeeper constraint's "<Kind>/<name>" (a kind of at most 63 characters, an object name
// of at most 253), so that exemptions, config and reports can name constraints and still refuse anything else.
func ValidName(s string) bool {
	if IsLabel(s) {
		return true
	}
	m := constraintName().FindStringSubmatch(s)
	return m != nil && len(m[1]) <= 63 && len(m[2]) <= 253
}

// readMetadata takes the package-scoped METADATA annotation of mod; a module without one gets a name derived
// from its package and medium severity, audit mode, so custom policies in the documents' layout still load.
func readMetadata(mod *ast.Module) (Metadata, error) {
	pkg := strings.TrimPrefix(mod.Package.Path.String(), "data.")
	md := Metadata{Package: pkg, Severity: SeverityMedium, DefaultMode: ModeAudit}
	if loc := mod.Package.Location; loc != nil {
		md.File = loc.File
	}
	var ann *ast.Annotations
	for _, a := range mod.Annotations {
		if a.Scope == "package" || a.Scope == "subpackages" {
			ann = a
			break
		}
	}
	if ann == nil {
		md.Name = nameFromPackage(pkg)
		md.Title = md.Name
		return md, nil
	}
	md.Title, md.Description = ann.Title, ann.Description
	custom := ann.Custom
	str := func(key string) (string, error) {
		v, ok := custom[key]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("METADATA custom.%s: expected a string, got %T", key, v)
		}
		return s, nil
	}
	var err error
	if md.Name, err = str("name"); err != nil {
		return md, err
	}
	if md.Name == "" {
		md.Name = nameFromPackage(pkg)
	}
	if !IsLabel(md.Name) {
		return md, fmt.Errorf("METADATA custom.name %q: a policy name is lower-case letters, digits and '-', at most 63 characters", md.Name)
	}
	if s, err := str("severity"); err != nil {
		return md, err
	} else if s != "" {
		if md.Severity, err = ParseSeverity(s); err != nil {
			return md, fmt.Errorf("METADATA custom.severity: %w", err)
		}
	}
	if s, err := str("mode"); err != nil {
		return md, err
	} else if s != "" {
		if md.DefaultMode, err = ParseMode(s); err != nil {
			return md, fmt.Errorf("METADATA custom.mode: %w", err)
		}
	}
	if md.Remediation, err = str("remediation"); err != nil {
		return md, err
	}
	if raw, ok := custom["parameters"]; ok && raw != nil {
		params, ok := raw.(map[string]any)
		if !ok {
			return md, fmt.Errorf("METADATA custom.parameters: expected a map of parameter name to JSON schema, got %T", raw)
		}
		md.Parameters = params
	}
	if md.Compliance, err = readCompliance(custom["compliance"]); err != nil {
		return md, err
	}
	if md.Title == "" {
		md.Title = md.Name
	}
	return md, nil
}

// readCompliance validates custom.compliance: a map of lower-case framework names to non-empty lists of control
// IDs, each a non-empty string without surrounding space, none repeated.
func readCompliance(raw any) (map[string][]string, error) {
	if raw == nil {
		return nil, nil
	}
	frameworks, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("METADATA custom.compliance: expected a map of framework to control IDs, e.g. {soc2: [CC6.1]}, got %T", raw)
	}
	out := make(map[string][]string, len(frameworks))
	for fw, v := range frameworks {
		field := "METADATA custom.compliance." + fw
		if !IsLabel(fw) {
			return nil, fmt.Errorf("%s: a framework name is lower-case letters, digits and '-' (soc2, gdpr, hipaa)", field)
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected a list of control IDs, got %T", field, v)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%s: lists no controls", field)
		}
		controls := make([]string, 0, len(list))
		seen := make(map[string]bool, len(list))
		for i, c := range list {
			s, ok := c.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: expected a string, got %T", field, i, c)
			}
			if s == "" || strings.TrimSpace(s) != s {
				return nil, fmt.Errorf("%s[%d]: a control ID is a non-empty string without surrounding spaces, got %q", field, i, s)
			}
			if seen[s] {
				return nil, fmt.Errorf("%s[%d]: control %q is listed twice", field, i, s)
			}
			seen[s] = true
			controls = append(controls, s)
		}
		out[fw] = controls
	}
	return out, nil
}

// nameFromPackage turns "attest.security.no_privileged" into "no-privileged".
func nameFromPackage(pkg string) string {
	last := pkg[strings.LastIndexByte(pkg, '.')+1:]
	return strings.ToLower(strings.ReplaceAll(last, "_", "-"))
}
