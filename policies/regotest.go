package policies

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego unit test (`test_*` rule).
type TestResult struct {
	Package string
	Name    string
	File    string
	Row     int
	Pass    bool
	Err     error
}

// RunTests runs the Rego unit tests of the given policies under the same pure capabilities that admission uses,
// so a test can never rely on a built-in that production refuses.
func RunTests(ctx context.Context, policies, tests []Source) ([]TestResult, error) {
	modules := make(map[string]*ast.Module, len(policies)+len(tests))
	for _, src := range append(append([]Source{}, policies...), tests...) {
		mod, err := parse(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Name, err)
		}
		if err := checkPurity(mod); err != nil {
			return nil, err
		}
		modules[src.Name] = mod
	}
	compiler := ast.NewCompiler().WithCapabilities(pureCapabilities())
	ch, err := tester.NewRunner().SetCompiler(compiler).SetModules(modules).RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("compile tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Package: r.Package, Name: r.Name, Pass: r.Pass(), Err: r.Error}
		if r.Location != nil {
			tr.File, tr.Row = r.Location.File, r.Location.Row
		}
		out = append(out, tr)
	}
	return out, nil
}
