package policies

import "github.com/open-policy-agent/opa/v1/ast"

// PureCapabilities are the capabilities every policy compiles against, the webhook's: OPA's built-ins less the
// impure ones. Tools that compile policy sources themselves (the workbench's tracer) use them so that what
// compiles there compiles in the webhook.
func PureCapabilities() *ast.Capabilities { return pureCapabilities() }

// Value is the whole input document a policy run with settings s sees: every part of the input contract, then
// input.params. (An evaluation gives a policy only the parts it reads; a trace or a snapshot test needs them all.)
func (d *Document) Value(s Settings) ast.Value {
	return d.input(inputReads{all: true}, s.paramsTerm())
}

// ParseSource parses a source as Compile does (Rego v0 or v1, METADATA annotations) and refuses impure
// built-ins by name.
func ParseSource(src Source) (*ast.Module, error) { return parseChecked(src) }
