package attestation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// impureBuiltins are unavailable to predicate checks, as to ATTEST policies: a verdict must depend on the predicate
// alone. (attestation may not import policies, so the list is kept here too; the tests pin both.)
var impureBuiltins = map[string]string{
	"http.send":          "it reaches the network",
	"net.lookup_ip_addr": "it reaches the network (DNS)",
	"opa.runtime":        "it reads the process environment",
	"rego.parse_module":  "it compiles code at evaluation time",
	"trace":              "it writes to the evaluation trace",
	"time.now_ns":        "it reads the clock",
	"rand.intn":          "it is not deterministic",
	"uuid.rfc4122":       "it is not deterministic",
}

func pureCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		_, impure := impureBuiltins[b.Name]
		return impure
	})
	return caps
}

// predicateCheck is a compiled attestation `policy`: its deny set must be empty.
type predicateCheck struct {
	query rego.PreparedEvalQuery
}

// compilePredicateCheck parses src as Rego v0 or v1 (whichever parses), refuses impure built-ins by name and by
// capabilities, and prepares the query data.<package>.deny once.
func compilePredicateCheck(name, src string) (*predicateCheck, error) {
	mod, err := parseRego(name, src)
	if err != nil {
		return nil, err
	}
	if err := checkPurity(mod); err != nil {
		return nil, regoError(err)
	}
	defined := false
	for _, r := range mod.Rules {
		if r.Head.Ref()[0].Value.String() == "deny" {
			defined = true
		}
	}
	if !defined {
		return nil, fmt.Errorf("package %s defines no deny rule: nothing to check", mod.Package.Path)
	}
	compiler := ast.NewCompiler().WithCapabilities(pureCapabilities())
	if compiler.Compile(map[string]*ast.Module{name: mod}); compiler.Failed() {
		return nil, regoError(compiler.Errors)
	}
	q, err := rego.New(rego.Compiler(compiler), rego.Query("deny = "+mod.Package.Path.Append(ast.StringTerm("deny")).String())).
		PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &predicateCheck{query: q}, nil
}

// eval returns the deny messages, sorted; an evaluation error is returned as such (and fails the attestation).
func (c *predicateCheck) eval(ctx context.Context, predicateType string, predicate any, image string) ([]string, error) {
	input, err := ast.InterfaceToValue(map[string]any{"predicate": predicate, "predicate_type": predicateType, "image": image})
	if err != nil {
		return nil, fmt.Errorf("predicate is not JSON: %w", err)
	}
	rs, err := c.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	var msgs []string
	for _, r := range rs {
		set, ok := r.Bindings["deny"].([]any)
		if !ok {
			continue
		}
		for _, v := range set {
			if s, ok := v.(string); ok {
				msgs = append(msgs, s)
				continue
			}
			if m, ok := v.(map[string]any); ok {
				if s, ok := m["msg"].(string); ok {
					msgs = append(msgs, s)
					continue
				}
				if s, ok := m["message"].(string); ok {
					msgs = append(msgs, s)
					continue
				}
			}
			b, _ := json.Marshal(v)
			msgs = append(msgs, string(b))
		}
	}
	sort.Strings(msgs)
	return msgs, nil
}

func parseRego(name, src string) (*ast.Module, error) {
	opts := func(v ast.RegoVersion) ast.ParserOptions { return ast.ParserOptions{RegoVersion: v} }
	mod, errV0 := ast.ParseModuleWithOpts(name, src, opts(ast.RegoV0))
	if errV0 == nil {
		return mod, nil
	}
	mod, errV1 := ast.ParseModuleWithOpts(name, src, opts(ast.RegoV1))
	if errV1 == nil {
		return mod, nil
	}
	if errorRow(errV1) > errorRow(errV0) {
		return nil, fmt.Errorf("parse as Rego v1: %w", regoError(errV1))
	}
	return nil, fmt.Errorf("parse as Rego v0 (add `import rego.v1` for v1 syntax): %w", regoError(errV0))
}

// regoError prints OPA's error list as "file:row: code: message; …", without its "N errors occurred" header.
func regoError(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		return err
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func errorRow(err error) int {
	var errs ast.Errors
	if errors.As(err, &errs) && len(errs) > 0 && errs[0].Location != nil {
		return errs[0].Location.Row
	}
	return 0
}

// checkPurity names each call of an impure built-in, so the author reads why rather than "undefined function".
func checkPurity(mod *ast.Module) error {
	var errs ast.Errors
	report := func(name string, loc *ast.Location) {
		if why, impure := impureBuiltins[name]; impure {
			errs = append(errs, ast.NewError(ast.CompileErr, loc, "%s is not allowed in predicate checks: %s", name, why))
		}
	}
	ast.WalkExprs(mod, func(e *ast.Expr) bool {
		if e.IsCall() {
			report(e.Operator().String(), e.Location)
		}
		return false
	})
	ast.WalkTerms(mod, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
			report(call[0].String(), t.Location)
		}
		return false
	})
	if len(errs) > 0 {
		return errs
	}
	return nil
}
