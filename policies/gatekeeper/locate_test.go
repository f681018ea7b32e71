package gatekeeper_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/policies/gatekeeper"
)

// TestErrorLine: a template's compile error is placed on the line of the YAML document that holds the Rego
// line or CEL expression the compiler names.
func TestErrorLine(t *testing.T) {
	brokenLib := `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: attestbrokenlib
spec:
  crd:
    spec:
      names:
        kind: AttestBrokenLib
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: Rego
          source:
            rego: |
              package attestbrokenlib
              import data.lib.ok
              violation[{"msg": "x"}] { ok.yes }
            libs:
              - |
                package lib.ok
                yes { true }
              - "package lib.bad\nno { undefined_fn(1) }"
`
	tests := []struct {
		name, doc, want string // want: text on the line found; "" for none
	}{
		{"rego parse error", string(readFile(t, "broken/rego-syntax.yaml")) + "# end\n", `# end`}, // the end of the block: the unclosed body
		{"rego type error", string(readFile(t, "broken/rego-undefined-function.yaml")), `is_privileged(input.review.object)`},
		{"rego library in code, quoted", brokenLib, `- "package lib.bad\nno { undefined_fn(1) }"`},
		{"cel validation", string(readFile(t, "broken/cel-expression.yaml")), `expression: variables.undeclared.size() == 0`},
		{"cel variable", string(readFile(t, "broken/cel-variable.yaml")), `expression: '"a" + ["b"]'`},
		{"not in a source", string(readFile(t, "broken/name-not-kind.yaml")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := gatekeeper.ParseTemplate([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			c, err := gatekeeper.New(gatekeeper.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = c.AddTemplate(context.Background(), tmpl)
			if err == nil {
				t.Fatal("the template compiled")
			}
			line := gatekeeper.ErrorLine([]byte(tt.doc), err)
			if tt.want == "" {
				if line != 0 {
					t.Errorf("line %d for %v, want none", line, err)
				}
				return
			}
			lines := strings.Split(tt.doc, "\n")
			if line < 1 || line > len(lines) || !strings.Contains(lines[line-1], tt.want) {
				t.Fatalf("line %d for %v, want the line with %q", line, err, tt.want)
			}
		})
	}
}
