package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Load reads every source's METADATA block and returns an engine that compiles each policy the first time it is
// used (Eval, Patch, Sampled, HasPatch, HasSample or Prepare), together with the sources it refers to. A run that
// evaluates two policies compiles two: `attest policy check --policy no-privileged` pays neither for the
// other policies' compilation nor for their memory.
//
// Load is for sources known to compile, such as the embedded library (whose tests compile it with Compile and
// check that Load gives the same catalogue and findings). It reports what Compile reports about METADATA, names
// and packages; an error in a policy's rules (syntax after the package line, an impure built-in, a type error,
// no result rule) surfaces on first use instead, as that policy's evaluation error. Use Compile for sources
// users write.
func Load(sources []Source) (*Engine, error) {
	set := &sourceSet{sources: make(map[string]Source, len(sources)), parsed: map[string]parsedModule{}}
	for _, src := range sources {
		set.sources[src.Name] = src
	}
	headers, metas, err := readSources(sources, parseHeader)
	if err != nil {
		return nil, err
	}
	set.packages = packagePaths(headers)
	e := &Engine{byName: make(map[string]*Policy, len(metas))}
	var errs []error
	for _, md := range metas {
		params, err := newParamSchema(md)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", md.File, err))
			continue
		}
		p := &Policy{Metadata: md, params: params}
		p.compile = func() (*compiled, error) { return set.compile(md) }
		e.add(p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.sort()
	return e, nil
}

// Prepare compiles the named policies now (every policy when names is empty), two at a time, so that their first
// evaluation does not pay for it; it returns their errors. The policies of an engine from Compile are compiled
// already. Unknown names are ignored.
func (e *Engine) Prepare(names ...string) error {
	todo := e.policies
	if len(names) > 0 {
		todo = nil
		for _, n := range names {
			if p, ok := e.byName[n]; ok {
				todo = append(todo, p)
			}
		}
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, p := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = p.compiled()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sourceSet compiles the policies of a Load engine on demand, each with the modules it refers to.
type sourceSet struct {
	sources  map[string]Source
	packages map[string]ast.Ref // file → package path

	mu     sync.Mutex
	parsed map[string]parsedModule // file → the whole module, parsed and checked once
}

type parsedModule struct {
	mod *ast.Module
	err error
}

// module parses and checks one whole source, once.
func (s *sourceSet) module(file string) (*ast.Module, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pm, ok := s.parsed[file]; ok {
		return pm.mod, pm.err
	}
	mod, err := parseChecked(s.sources[file])
	s.parsed[file] = parsedModule{mod, err}
	return mod, err
}

// compile compiles the policy of md with the modules it refers to and prepares its queries, as Compile does.
func (s *sourceSet) compile(md Metadata) (*compiled, error) {
	group := dependencies(md.File, s.packages, func(file string) []*ast.Module {
		if mod, err := s.module(file); err == nil {
			return []*ast.Module{mod}
		}
		return nil
	})
	modules := make(map[string]*ast.Module, len(group))
	var errs []error
	for _, file := range group {
		mod, err := s.module(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		modules[file] = mod
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	compiler := ast.NewCompiler().WithCapabilities(pureCapabilities())
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policies: %w", compiler.Errors)
	}
	mod := modules[md.File]
	rules, defined, err := resultRulesOf(mod, md)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", md.File, err)
	}
	// The queries are prepared once for the process, never for one request: no request's context applies.
	c, err := prepareQueries(context.Background(), compiler, mod, rules, defined)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", md.File, err)
	}
	c.plan.source = &planSource{group: modules, mod: mod}
	compiledGroup := make([]*ast.Module, 0, len(group))
	for _, file := range group {
		compiledGroup = append(compiledGroup, compiler.Modules[file])
	}
	c.reads, c.memo = readsAndMemo(compiledGroup)
	return c, nil
}

// parseHeader parses what precedes a source's first rule: its METADATA block and package clause, which is all
// the catalogue needs. A source whose rules carry METADATA blocks of their own, or whose header does not parse
// alone, is parsed whole, so the catalogue is always what a full parse gives.
func parseHeader(src Source) (*ast.Module, error) {
	if header, ok := headerText(src.Text); ok {
		if mod, err := parse(Source{Name: src.Name, Text: header, Version: src.Version}); err == nil {
			return mod, nil
		}
	}
	mod, err := parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	return mod, nil
}

// headerText is text up to the end of its package clause, when only comments and blank lines precede it and no
// METADATA block follows it.
func headerText(text string) (string, bool) {
	rest := text
	for rest != "" {
		line, next, _ := strings.Cut(rest, "\n")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			rest = next
			continue
		case strings.HasPrefix(trimmed, "package ") || strings.HasPrefix(trimmed, "package\t"):
			end := len(text) - len(next)
			if strings.Contains(next, "METADATA") || strings.ContainsAny(trimmed, "#{}[]\"`") {
				return "", false
			}
			return text[:end], true
		}
		return "", false
	}
	return "", false
}

// packagePaths maps each file to its package path.
func packagePaths(modules map[string]*ast.Module) map[string]ast.Ref {
	out := make(map[string]ast.Ref, len(modules))
	for file, mod := range modules {
		out[file] = mod.Package.Path
	}
	return out
}

// dependencies lists file and every module that a data reference of the group may reach, transitively, in a
// stable order: the modules the policy must be compiled with. A reference reaches a package when either path is a
// prefix of the other (data.attest reaches every attest.* package; data[x] reaches all); the policy's own package
// counts as such a reference, so a module defining rules inside it is included too. modules returns the parsed
// module of a file (nil when it cannot be read; the caller reports that).
func dependencies(file string, packages map[string]ast.Ref, modules func(file string) []*ast.Module) []string {
	group := []string{file}
	in := map[string]bool{file: true}
	refs := []ast.Ref{packages[file]}
	for i := 0; i < len(group); i++ {
		for _, mod := range modules(group[i]) {
			refs = append(refs, dataRefs(mod)...)
		}
		for ; len(refs) > 0; refs = refs[1:] {
			prefix := refs[0]
			for other, pkg := range packages {
				if in[other] || !prefix.HasPrefix(pkg) && !pkg.HasPrefix(prefix) {
					continue
				}
				in[other] = true
				group = append(group, other)
			}
		}
	}
	return group
}

// dataRefs lists the ground prefixes of the references to data in mod's imports and rules; a use of data as a
// whole is the reference data, which reaches every package.
func dataRefs(mod *ast.Module) []ast.Ref {
	var out []ast.Ref
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case ast.Ref:
			if !v[0].Equal(ast.DefaultRootDocument) {
				return false
			}
			out = append(out, v.GroundPrefix())
			for _, t := range v[1:] {
				vis.Walk(t)
			}
			return true
		case ast.Var:
			if v.Equal(ast.DefaultRootDocument.Value) {
				out = append(out, ast.DefaultRootRef)
			}
		}
		return false
	})
	for _, imp := range mod.Imports {
		vis.Walk(imp)
	}
	for _, rule := range mod.Rules {
		vis.Walk(rule)
	}
	return out
}

// inputReads is which parts of the input document a policy's rules read.
type inputReads struct {
	// all: a rule reads input as a whole (x := input, input[k], object.get(input, ...), with input as ...).
	all   bool
	parts uint8 // bit i: documentParts[i]
	// below lists, for the object's parts (resource, old_resource), the paths below the part that the rules
	// read, when they never read the part whole: the policy is then given only those subtrees (see pruned).
	below [numParts][][]string
	// belowKey names each part's paths below it, the key of its pruned object in a document (see pruned).
	belowKey [numParts]string
}

func (r inputReads) reads(part int) bool { return r.all || r.parts&(1<<part) != 0 }

// readsOf is which parts of input the paths a policy reads (readPaths) name: each path's first key; all of input
// when a rule uses it in a way no path describes (ok false).
func readsOf(paths [][]string, ok bool) inputReads {
	if !ok {
		return inputReads{all: true}
	}
	var r inputReads
	whole := [numParts]bool{}
	for _, path := range paths {
		for i, part := range documentParts {
			if path[0] != part {
				continue
			}
			r.parts |= 1 << i
			if len(path) == 1 {
				whole[i] = true
			} else {
				r.below[i] = append(r.below[i], path[1:])
			}
		}
	}
	for i := range numParts {
		if whole[i] || i != partResource && i != partOldResource {
			r.below[i] = nil
			continue
		}
		r.belowKey[i] = belowKey(i, r.below[i])
	}
	return r
}
