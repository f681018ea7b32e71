package regoplan

import (
	"errors"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Pure built-ins of strings whose results are worth keeping between evaluations: the quantities of resource
// limits ("500m", "1Gi") recur in every Deployment, as do the patterns they are matched against, and the receipt
// ATTEST's mutating webhook writes is the same text for every object of the same verified images. Each maps to
// the longest argument kept (every argument must be a string no longer).
var remembered = map[string]int{
	"units.parse":       64,
	"units.parse_bytes": 64,
	"json.unmarshal":    16 << 10,
	"regex.match":       256,
}

// rememberedSize bounds the kept results (an entry is a short string and its value; a receipt's is a few KiB).
const rememberedSize = 4096

type rememberedResult struct {
	v   *ast.Term // nil: undefined (the built-in failed)
	err error     // a halt
}

// errUndefined is what a kept failure returns: the call is undefined, as the failure made it the first time.
var errUndefined = errors.New("undefined")

// rememberedKey is a built-in's name and its arguments (the second "" for built-ins of one): a key made of the
// strings as they are (joining them copied the argument, a receipt of a few KiB, on every call).
type rememberedKey struct{ name, arg, arg2 string }

var results, _ = lru.New[rememberedKey, rememberedResult](rememberedSize) // the size is positive: New cannot fail

// keyOf is the key of a call of name with one or two string arguments none longer than limit.
func keyOf(name string, args []*ast.Term, limit int) (rememberedKey, bool) {
	if len(args) == 0 || len(args) > 2 {
		return rememberedKey{}, false
	}
	var strs [2]string
	for i, a := range args {
		s, ok := a.Value.(ast.String)
		if !ok || len(s) > limit {
			return rememberedKey{}, false
		}
		strs[i] = string(s)
	}
	return rememberedKey{name, strs[0], strs[1]}, true
}

// remember wraps a built-in of remembered: a call with short enough string arguments answers from the results
// kept, or calls the built-in and keeps its result. Values are never changed once made, so sharing them between
// evaluations is safe.
func remember(name string, f topdown.BuiltinFunc) topdown.BuiltinFunc {
	limit, ok := remembered[name]
	if !ok {
		return f
	}
	return func(bctx topdown.BuiltinContext, args []*ast.Term, iter func(*ast.Term) error) error {
		key, ok := keyOf(name, args, limit)
		if !ok {
			return f(bctx, args, iter)
		}
		if r, ok := results.Get(key); ok {
			if r.err != nil {
				return r.err
			}
			if r.v == nil {
				return errUndefined
			}
			return iter(r.v)
		}
		var out *ast.Term
		err := f(bctx, args, func(t *ast.Term) error {
			out = t
			return nil
		})
		var halt topdown.Halt
		switch {
		case err == nil:
			results.Add(key, rememberedResult{v: out})
		case errors.As(err, &halt):
			results.Add(key, rememberedResult{err: err})
			return err
		default:
			results.Add(key, rememberedResult{})
			return err
		}
		if out == nil {
			return nil
		}
		return iter(out)
	}
}
