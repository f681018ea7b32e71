package gatekeeper

import (
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego/schema"
	"github.com/open-policy-agent/opa/v1/ast"
)

// ReadsInventory tells whether the template's Rego (entry point or libraries) may read data.inventory: a
// reference to data.inventory, to data with a variable or computed key, or to data as a whole. A source that
// does not parse counts as reading it. CEL cannot read data.inventory. A caller that loads the inventory only
// for templates that read it (attest policy check) decides nothing by it: the results are the same.
func (t *Template) ReadsInventory() bool {
	var sources []regoCode
	for _, tg := range t.ct.Spec.Targets {
		if tg.Rego != "" {
			sources = append(sources, regoCode{tg.Rego, tg.Libs, ast.RegoV0})
		}
		for _, c := range tg.Code {
			if c.Engine != schema.Name {
				continue
			}
			src, err := schema.GetSource(c)
			if err != nil {
				return true
			}
			v := ast.RegoV0
			if src.Version == "v1" {
				v = ast.RegoV1
			}
			sources = append(sources, regoCode{src.Rego, src.Libs, v})
		}
	}
	for _, s := range sources {
		for _, text := range append([]string{s.rego}, s.libs...) {
			mod, err := ast.ParseModuleWithOpts("template", text, ast.ParserOptions{RegoVersion: s.version})
			if err != nil || readsInventory(mod) {
				return true
			}
		}
	}
	return false
}

type regoCode struct {
	rego    string
	libs    []string
	version ast.RegoVersion
}

// readsInventory finds a reference into data that can reach data.inventory.
func readsInventory(mod *ast.Module) bool {
	found := false
	ast.WalkRefs(mod, func(r ast.Ref) bool {
		if found || len(r) == 0 || !r[0].Equal(ast.DefaultRootDocument) {
			return found
		}
		if len(r) == 1 {
			found = true // data as a whole
			return true
		}
		if s, ok := r[1].Value.(ast.String); !ok || s == "inventory" {
			found = true // data.inventory, or data[x]
		}
		return found
	})
	return found
}
