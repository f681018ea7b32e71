package cedar_test

import (
	"os"
	"strings"
	"testing"

	"github.com/continuums/attest/policies/cedar"
)

// TestExampleMatrix runs every row of examples/cedar's decision matrix and checks that the matrix exercises
// every policy of the example set (each decides at least one denied row) and both decisions.
func TestExampleMatrix(t *testing.T) {
	results, err := cedar.RunTestFile("../../examples/cedar/production_test.yaml", cedar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../examples/cedar/production_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Fatalf("%d rows, want the full matrix", len(results))
	}
	for _, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("%s:%d: %s", r.File, r.Line, r.Error)
			}
		})
	}
	text, err := os.ReadFile("../../examples/cedar/production.cedar")
	if err != nil {
		t.Fatal(err)
	}
	set, err := cedar.Parse(cedar.Source{Name: "production.cedar", Text: string(text)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range set.IDs() {
		if !strings.Contains(string(raw), "reasons: ["+id+"]") {
			t.Errorf("no row of the matrix is denied by %s", id)
		}
	}
	if !strings.Contains(string(raw), "decision: allow") || !strings.Contains(string(raw), "decision: deny") {
		t.Error("the matrix needs allowed and denied rows")
	}
}
