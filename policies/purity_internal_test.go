package policies

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestCapabilitiesAloneRefuseImpureBuiltins compiles without the AST check: the capability set itself must refuse
// every impure built-in, so purity does not rest on one walk of the syntax tree.
func TestCapabilitiesAloneRefuseImpureBuiltins(t *testing.T) {
	for name := range impureBuiltins {
		t.Run(name, func(t *testing.T) {
			args := map[string]string{"http.send": `{"method": "GET", "url": "x"}`, "net.lookup_ip_addr": `"x"`, "rego.parse_module": `"a", "b"`, "trace": `"x"`, "rand.intn": `"x", 1`, "uuid.rfc4122": `"x"`}[name]
			src := "package p\n\nimport rego.v1\n\nx if { " + name + "(" + args + ") }\n"
			mod, err := ast.ParseModuleWithOpts("p.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithCapabilities(pureCapabilities())
			c.Compile(map[string]*ast.Module{"p.rego": mod})
			if !c.Failed() || !strings.Contains(c.Errors.Error(), "undefined function "+name) {
				t.Fatalf("compiled or failed for another reason: %v", c.Errors)
			}
		})
	}
}
