package gatekeeper_test

import (
	"strings"
	"testing"

	"github.com/continuums/attest/policies/gatekeeper"
)

// TestReadsInventory: a template reads data.inventory when its Rego (or a library) refers to it, to data with a
// computed key, or to data as a whole; CEL never does; Rego that does not parse is taken to read it.
func TestReadsInventory(t *testing.T) {
	regoTemplate := func(body, libs string) string {
		doc := "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: attestx\nspec:\n  crd:\n    spec:\n      names:\n        kind: AttestX\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n"
		for _, l := range strings.Split("package attestx\n"+body, "\n") {
			doc += "        " + l + "\n"
		}
		if libs != "" {
			doc += "      libs:\n        - |\n"
			for _, l := range strings.Split(libs, "\n") {
				doc += "          " + l + "\n"
			}
		}
		return doc
	}
	tests := []struct {
		name, doc string
		want      bool
	}{
		{"data.inventory in a rule", string(readFile(t, "namespaceowner/template.yaml")), true},
		{"only its libraries and input", string(readFile(t, "requiredlabels/template.yaml")), false},
		{"CEL", string(readFile(t, "allowedregistries/template.yaml")), false},
		{"imported", regoTemplate("import data.inventory as inv\nviolation[{\"msg\": \"x\"}] { inv.cluster }", ""), true},
		{"computed key", regoTemplate("violation[{\"msg\": \"x\"}] { k := \"inventory\"; data[k] }", ""), true},
		{"data as a whole", regoTemplate("violation[{\"msg\": \"x\"}] { d := data; d.inventory }", ""), true},
		{"in a library", regoTemplate("import data.lib.x\nviolation[{\"msg\": \"x\"}] { x.y }", "package lib.x\ny { data.inventory.cluster }"), true},
		{"another document of data", regoTemplate("import data.lib.x\nviolation[{\"msg\": \"x\"}] { x.y }", "package lib.x\ny { true }"), false},
		{"does not parse", regoTemplate("violation[{\"msg\": \"x\"}] {", ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := gatekeeper.ParseTemplate([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := tmpl.ReadsInventory(); got != tt.want {
				t.Errorf("ReadsInventory() = %v, want %v", got, tt.want)
			}
		})
	}
}
