package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// conflicting fails at evaluation time: two definitions of a complete rule with different values.
const conflicting = `# METADATA
# title: Broken at evaluation
# description: fails when evaluated
# custom:
#   name: broken
#   severity: high
#   mode: %s
#   remediation: none
package custom.broken

import rego.v1

x := 1 if input.request.operation == "CREATE"

x := 2 if input.request.operation == "CREATE"

violation contains "never" if x == 3
`

func TestPolicyErrorFailsClosedWhenEnforced(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		allowed bool
	}{{"enforce", false}, {"audit", true}} {
		t.Run(tc.mode, func(t *testing.T) {
			e, err := policies.Compile(context.Background(), []policies.Source{{Name: "broken.rego", Text: strings.Replace(conflicting, "%s", tc.mode, 1)}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Default(e)
			ev, err := admission.New(admission.Options{Engine: e, Config: func() *config.Config { return cfg }})
			if err != nil {
				t.Fatal(err)
			}
			d := ev.Evaluate(context.Background(), Create(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "nginx")}})))
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", d.Allowed, tc.allowed, d.Message)
			}
			if len(d.Results) != 1 || d.Results[0].Outcome != admission.OutcomeError {
				t.Fatalf("results = %+v", d.Results)
			}
			text := d.Message
			if tc.allowed {
				text = strings.Join(d.Warnings, "\n")
			}
			if !strings.Contains(text, "[broken]: the policy could not be evaluated: evaluate policy broken:") ||
				!strings.Contains(text, "ATTEST fails closed") {
				t.Fatalf("message does not explain the failure: %s", text)
			}
		})
	}
}
