package policies

import (
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// RegoVersion says how a module's source is to be parsed.
type RegoVersion int

const (
	// RegoAuto parses as Rego v0 (the syntax of the policy documents users already have), which also covers files
	// that `import rego.v1`; a file that only parses as v1 is taken as v1.
	RegoAuto RegoVersion = iota
	// RegoV0 insists on v0 syntax.
	RegoV0
	// RegoV1 insists on v1 syntax.
	RegoV1
)

// Source is one Rego file to compile.
type Source struct {
	// Name identifies the file in messages (a path, or "Policy/<name>" for a custom resource).
	Name string
	Text string
	// Version is how to parse Text; the zero value is RegoAuto.
	Version RegoVersion
}

// parse parses one source with an explicit Rego version, never the library default, so v0 and v1 both load.
func parse(src Source) (*ast.Module, error) {
	opts := func(v ast.RegoVersion) ast.ParserOptions {
		return ast.ParserOptions{ProcessAnnotation: true, RegoVersion: v}
	}
	switch src.Version {
	case RegoV0:
		return ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV0))
	case RegoV1:
		return ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV1))
	}
	mod, errV0 := ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV0))
	if errV0 == nil {
		return mod, nil
	}
	mod, errV1 := ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV1))
	if errV1 == nil {
		return mod, nil
	}
	// Report the attempt that got further into the file: that is the syntax the author meant.
	if errorLine(errV1) > errorLine(errV0) {
		return nil, fmt.Errorf("parse as Rego v1: %w", errV1)
	}
	return nil, fmt.Errorf("parse as Rego v0 (add `import rego.v1` for v1 syntax): %w", errV0)
}

// errorLine is the line of the first parse error, 0 when unknown.
func errorLine(err error) int {
	var errs ast.Errors
	if errors.As(err, &errs) && len(errs) > 0 && errs[0].Location != nil {
		return errs[0].Location.Row
	}
	return 0
}
