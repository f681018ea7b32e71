package policies

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestTermFindingsMatchJSONFindings: the plan's values are read as Rego values and topdown's as Go values; every
// shape, well-formed or not, must give the same findings and the same error.
func TestTermFindingsMatchJSONFindings(t *testing.T) {
	p := &Policy{Metadata: Metadata{Name: "shapes", Severity: SeverityLow, Remediation: "the default fix"}}
	values := []string{
		`{"a string", "another"}`,
		`{{"message": "m", "severity": "high", "path": "spec.a", "fix": "do this"}}`,
		`{{"msg": "gatekeeper form", "details": {}}}`,
		`{{"message": "", "msg": "msg when message is empty"}}`,
		`{{"message": "violated", "violated": true}, {"message": "not violated", "violated": false}}`,
		`{{"message": "m", "violated": "yes"}}`,
		`{{"message": "m", "violated": null}}`,
		`{{"message": ""}}`,
		`{{"message": 7}}`,
		`{{"path": "spec.a"}}`,
		`{{"message": "m", "severity": "urgent"}}`,
		`{{"message": "m", "severity": 3, "path": 4, "fix": ""}}`,
		`{{"message": "m", "fix": ["not", "text"]}}`,
		`{7}`,
		`{["a", "b"]}`,
		`{}`,
		`["an", "array"]`,
		`{"an": "object"}`,
		`"a string"`,
		`{"b", {"message": "a"}, {"message": "a", "path": "x"}, {"message": "a", "path": "x", "fix": "f"}}`,
	}
	for _, rule := range []string{"violation", "warn"} {
		for _, text := range values {
			t.Run(rule+" "+text, func(t *testing.T) {
				term := ast.MustParseTerm(text)
				v, err := ast.JSON(term.Value)
				if err != nil {
					t.Fatal(err)
				}
				want, wantErr := p.jsonFindings(nil, rule, v)
				got, gotErr := p.termFindings(nil, rule, term)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("error %v, want %v", gotErr, wantErr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("findings\n%+v\nwant\n%+v", got, want)
				}
			})
		}
	}
}
