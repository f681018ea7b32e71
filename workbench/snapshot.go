package workbench

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Case is one snapshot test case: an input document and the values the policy's result rules had for it.
type Case struct {
	// Name becomes the test rule's name (test_<name>), made a Rego identifier.
	Name string
	// Comment says where the input came from (file:line, object).
	Comment string
	Input   map[string]any
	Rules   map[string]ast.Value
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// TestName makes a Rego rule name of s: lower case, runs of anything but letters, digits and _ as one _.
func TestName(s string) string {
	n := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(s), "_"), "_")
	if n == "" {
		n = "case"
	}
	return "test_" + n
}

// SnapshotTests writes a _test.rego file with one test per case, each asserting the exact value of every result
// rule (violation, deny, warn) of the policy in package pkg (data.…) for the case's input: today's verdicts and
// messages, which `attest policy test` then holds the policy to. Test names are made unique.
func SnapshotTests(pkg string, header string, cases []Case) (string, error) {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	fmt.Fprintf(&b, "package %s_test\n\nimport rego.v1\n\nimport %s as policy\n", strings.TrimPrefix(pkg, "data."), pkg)
	used := map[string]int{}
	for _, c := range cases {
		name := TestName(c.Name)
		if n := used[name]; n > 0 {
			used[name]++
			name = fmt.Sprintf("%s_%d", name, n+1)
		} else {
			used[name] = 1
		}
		input, err := json.MarshalIndent(c.Input, "\t", "\t")
		if err != nil {
			return "", fmt.Errorf("case %s: input: %w", c.Name, err)
		}
		b.WriteString("\n")
		for _, line := range strings.Split(strings.TrimSpace(c.Comment), "\n") {
			if line != "" {
				fmt.Fprintf(&b, "# %s\n", line)
			}
		}
		fmt.Fprintf(&b, "%s if {\n\tdoc := %s\n", name, input)
		rules := make([]string, 0, len(c.Rules))
		for r := range c.Rules {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		for _, r := range rules {
			fmt.Fprintf(&b, "\tpolicy.%s == %s with input as doc\n", r, regoValue(c.Rules[r]))
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

// regoValue writes v as Rego, a set one element a line so that a reviewer reads each finding.
func regoValue(v ast.Value) string {
	s, ok := v.(ast.Set)
	if !ok {
		return v.String()
	}
	if s.Len() == 0 {
		return "set()"
	}
	var b strings.Builder
	b.WriteString("{\n")
	s.Foreach(func(t *ast.Term) { fmt.Fprintf(&b, "\t\t%s,\n", t.String()) })
	b.WriteString("\t}")
	return b.String()
}
