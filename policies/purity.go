package policies

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// impureBuiltins are removed from the capabilities policies compile against: an admission decision must depend
// on its input alone, be repeatable offline, and never wait on the network.
var impureBuiltins = map[string]string{
	"http.send":          "it reaches the network",
	"net.lookup_ip_addr": "it reaches the network (DNS)",
	"opa.runtime":        "it reads the process environment",
	"rego.parse_module":  "it compiles code at evaluation time",
	"trace":              "it writes to the evaluation trace",
	"time.now_ns":        "it reads the clock; use input.request.timestamp_ns",
	"rand.intn":          "it is not deterministic",
	"uuid.rfc4122":       "it is not deterministic",
}

// pureCapabilities is OPA's capability set for this version minus the impure built-ins.
func pureCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		_, impure := impureBuiltins[b.Name]
		return impure
	})
	return caps
}

// checkPurity names every call of an impure built-in in mod, so the author reads why instead of
// "undefined function".
func checkPurity(mod *ast.Module) error {
	var errs ast.Errors
	ast.WalkExprs(mod, func(e *ast.Expr) bool {
		if !e.IsCall() {
			return false
		}
		name := e.Operator().String()
		if why, impure := impureBuiltins[name]; impure {
			errs = append(errs, ast.NewError(ast.CompileErr, e.Location,
				"%s is not allowed in ATTEST policies: %s; policies must be pure functions of their input", name, why))
		}
		return false
	})
	// Calls nested in terms (x := time.now_ns()) are Call terms, not call expressions.
	ast.WalkTerms(mod, func(t *ast.Term) bool {
		call, ok := t.Value.(ast.Call)
		if !ok || len(call) == 0 {
			return false
		}
		name := call[0].String()
		if why, impure := impureBuiltins[name]; impure {
			errs = append(errs, ast.NewError(ast.CompileErr, t.Location,
				"%s is not allowed in ATTEST policies: %s; policies must be pure functions of their input", name, why))
		}
		return false
	})
	if len(errs) > 0 {
		return fmt.Errorf("%w", errs)
	}
	return nil
}
