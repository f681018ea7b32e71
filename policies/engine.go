// Package policies compiles Rego policies once, evaluates them with one prepared query each over the input
// document of the README's contract, and reads each policy's catalogue entry from its METADATA block.
package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// resultRules are the rules a policy may define for its findings, in the conventions users bring with them:
// `violation` (ATTEST, Gatekeeper-like), `deny` (conftest, Spacelift) and `warn` (always a warning).
var resultRules = []string{"violation", "deny", "warn"}

// Optional rules, each with its own prepared query when the package defines it: `patch` (JSON Patch operations
// that make the object compliant) and `sample` (record this evaluation's input for replay).
const (
	patchRule  = "patch"
	sampleRule = "sample"
)

// Policy is one policy of an engine: its catalogue entry, and its prepared queries once compiled.
type Policy struct {
	Metadata
	params *paramSchema

	// noMemo turns the memo off, for profiling: every evaluation then runs the query.
	noMemo atomic.Bool
	// noPlan makes topdown evaluate the policy even where a plan exists, to compare the two.
	noPlan atomic.Bool
	// ev evaluates a policy of another language (see NewPolicy); nil for Rego.
	ev Evaluator

	once sync.Once
	// compile, set by Load, compiles the policy on first use; Compile sets c at once.
	compile func() (*compiled, error)
	c       *compiled
	err     error
}

// compiled is what evaluating a policy needs: one prepared query for its result rules, one for each optional
// rule it defines, and the parts of the input document its rules read.
type compiled struct {
	query rego.PreparedEvalQuery
	rules []string // which of resultRules the package defines
	// patch and sample are nil when the package does not define the rule: no query runs for it.
	patch  *rego.PreparedEvalQuery
	sample *rego.PreparedEvalQuery
	reads  inputReads
	memo   *memo
	// plan is what runs the same rules through OPA's planner's IR once the policy is planned (see plan.go).
	plan planState
}

// compiled returns the policy's queries, compiling them on first use for an engine from Load. The error of a
// policy that does not compile is returned on every use: it is a property of the source, not of one request.
func (p *Policy) compiled() (*compiled, error) {
	p.once.Do(func() {
		if p.compile != nil {
			p.c, p.err = p.compile()
			p.compile = nil
		}
	})
	return p.c, p.err
}

// Engine holds every policy of a set of sources; it is immutable (but for compiling on first use) and safe for
// concurrent use.
type Engine struct {
	policies []*Policy
	byName   map[string]*Policy
	// together holds the paths policies of one admission read of the object together, by which policies (see
	// Document.ReadTogether): uint64 → *[numParts]*sharedPaths.
	together sync.Map
}

// Compile parses, checks and compiles the sources once; every policy gets one prepared query. Each source is
// one policy package; test files belong to RunTests, not here. Every error of every source is reported here.
func Compile(ctx context.Context, sources []Source) (*Engine, error) {
	modules, metas, err := readSources(sources, parseChecked)
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithCapabilities(pureCapabilities())
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policies: %w", compiler.Errors)
	}
	packages := packagePaths(modules)
	e := &Engine{byName: make(map[string]*Policy, len(metas))}
	var errs []error
	for _, md := range metas {
		group := dependencies(md.File, packages, func(file string) []*ast.Module { return []*ast.Module{modules[file]} })
		parsedGroup := make(map[string]*ast.Module, len(group))
		for _, file := range group {
			parsedGroup[file] = modules[file]
		}
		p, err := prepare(ctx, compiler, parsedGroup, modules[md.File], md)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", md.File, err))
			continue
		}
		compiledGroup := make([]*ast.Module, len(group))
		for i, file := range group {
			compiledGroup[i] = compiler.Modules[file]
		}
		p.c.reads, p.c.memo = readsAndMemo(compiledGroup)
		e.add(p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.sort()
	return e, nil
}

// readSources parses every source with parseFn and reads its METADATA, checking that names and packages are
// unique; it reports every source's errors together.
func readSources(sources []Source, parseFn func(Source) (*ast.Module, error)) (map[string]*ast.Module, []Metadata, error) {
	modules := make(map[string]*ast.Module, len(sources))
	var metas []Metadata
	var errs []error
	names := map[string]string{}
	packages := map[string]string{}
	for _, src := range sources {
		mod, err := parseFn(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		md, err := readMetadata(mod)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src.Name, err))
			continue
		}
		md.File = src.Name
		sum := sha256.Sum256([]byte(src.Text))
		md.Digest = hex.EncodeToString(sum[:8])
		if prev, dup := names[md.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: policy name %q is already used by %s", src.Name, md.Name, prev))
			continue
		}
		if prev, dup := packages[md.Package]; dup {
			errs = append(errs, fmt.Errorf("%s: package %s is already used by %s; each policy needs its own package", src.Name, md.Package, prev))
			continue
		}
		names[md.Name], packages[md.Package] = src.Name, src.Name
		modules[src.Name] = mod
		metas = append(metas, md)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return modules, metas, nil
}

// parseChecked parses a source and refuses impure built-ins; errors name the source.
func parseChecked(src Source) (*ast.Module, error) {
	mod, err := parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	if err := checkPurity(mod); err != nil {
		return nil, err
	}
	return mod, nil
}

func (e *Engine) add(p *Policy) {
	e.policies = append(e.policies, p)
	e.byName[p.Name] = p
}

func (e *Engine) sort() {
	sort.Slice(e.policies, func(i, j int) bool { return e.policies[i].Name < e.policies[j].Name })
}

// prepare builds the queries of a policy of a compiled set and its parameter schema.
func prepare(ctx context.Context, compiler *ast.Compiler, group map[string]*ast.Module, mod *ast.Module, md Metadata) (*Policy, error) {
	p := &Policy{Metadata: md}
	p.once.Do(func() {}) // compiled now, never on use
	rules, defined, err := resultRulesOf(mod, md)
	if err != nil {
		return nil, err
	}
	if p.params, err = compileParamSchema(md); err != nil {
		return nil, err
	}
	if p.c, err = prepareQueries(ctx, compiler, mod, rules, defined); err != nil {
		return nil, err
	}
	p.c.plan.source = &planSource{group: group, mod: mod}
	return p, nil
}

// resultRulesOf lists the result rules mod defines, and every rule name it defines.
func resultRulesOf(mod *ast.Module, md Metadata) ([]string, map[string]bool, error) {
	defined := map[string]bool{}
	for _, r := range mod.Rules {
		defined[r.Head.Ref()[0].Value.String()] = true
	}
	var rules []string
	for _, name := range resultRules {
		if defined[name] {
			rules = append(rules, name)
		}
	}
	if len(rules) == 0 {
		return nil, nil, fmt.Errorf("package %s defines none of the rules %s: nothing to report", md.Package, strings.Join(resultRules, ", "))
	}
	return rules, defined, nil
}

// prepareQueries builds the one query of a policy (each result rule it defines, bound to a variable of the same
// name) and the queries of the optional rules it defines.
func prepareQueries(ctx context.Context, compiler *ast.Compiler, mod *ast.Module, rules []string, defined map[string]bool) (*compiled, error) {
	c := &compiled{rules: rules}
	query := make([]string, len(rules))
	for i, name := range rules {
		query[i] = name + " = " + mod.Package.Path.Append(ast.StringTerm(name)).String()
	}
	var err error
	if c.query, err = prepareQuery(ctx, compiler, strings.Join(query, "; ")); err != nil {
		return nil, err
	}
	for _, opt := range []struct {
		rule string
		dst  **rego.PreparedEvalQuery
	}{{patchRule, &c.patch}, {sampleRule, &c.sample}} {
		if !defined[opt.rule] {
			continue
		}
		q, err := prepareQuery(ctx, compiler, opt.rule+" = "+mod.Package.Path.Append(ast.StringTerm(opt.rule)).String())
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", opt.rule, err)
		}
		*opt.dst = &q
	}
	return c, nil
}

func prepareQuery(ctx context.Context, compiler *ast.Compiler, query string) (rego.PreparedEvalQuery, error) {
	pq, err := rego.New(rego.Compiler(compiler), rego.Query(query)).PrepareForEval(ctx)
	if err != nil {
		return pq, fmt.Errorf("prepare query: %w", err)
	}
	return pq, nil
}

// evalQuery runs a prepared query over input. The evaluation is cancelled when ctx is done, as rego's default
// does, but through a context callback instead of a goroutine per query, and without collecting metrics that
// nobody reads.
func evalQuery(ctx context.Context, q *rego.PreparedEvalQuery, input ast.Value) (rego.ResultSet, error) {
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	return q.Eval(ctx, rego.EvalParsedInput(input), rego.EvalMetrics(metrics.NoOp()), rego.EvalExternalCancel(cancel))
}

// SetMemo turns the memo of every policy on (the default) or off: profiling measures each evaluation, not a
// memo hit.
func (e *Engine) SetMemo(on bool) {
	for _, p := range e.policies {
		p.noMemo.Store(!on)
	}
}

// Policies lists every policy, sorted by name.
func (e *Engine) Policies() []*Policy { return e.policies }

// Lookup finds a policy by name.
func (e *Engine) Lookup(name string) (*Policy, bool) {
	p, ok := e.byName[name]
	return p, ok
}

// ValidateParams checks parameters against the policy's schema and names the field at fault.
func (p *Policy) ValidateParams(params map[string]any) error { return p.params.validate(params) }

// EffectiveParams fills in the defaults the METADATA declares.
func (p *Policy) EffectiveParams(params map[string]any) map[string]any {
	return p.params.withDefaults(params)
}

// Finding is one thing a policy reports.
type Finding struct {
	Message  string   `json:"message"`
	Severity Severity `json:"severity"`
	// Path is the container's path, a field below it, or the object field at fault; "" for the whole object.
	Path string `json:"path,omitempty"`
	// Fix tells the user what to change; the policy's remediation unless the finding names its own.
	Fix string `json:"fix,omitempty"`
	// Warning marks findings of a `warn` rule: reported, never denied, whatever the mode.
	Warning bool `json:"warning,omitempty"`
	// RecordOnly marks findings that are never denied and never shown at kubectl apply: they are recorded in the
	// audit annotations, metrics and decision log only (a Gatekeeper constraint's dryrun).
	RecordOnly bool `json:"recordOnly,omitempty"`
}

// Eval runs the policy's prepared query (or its evaluator) over doc with the parameters of s.
func (p *Policy) Eval(ctx context.Context, doc *Document, s Settings) ([]Finding, error) {
	if p.ev != nil {
		out, err := p.ev.Evaluate(ctx, doc, s)
		if err != nil {
			return nil, fmt.Errorf("evaluate policy %s: %w", p.Name, err)
		}
		return out, nil
	}
	c, err := p.compiled()
	if err != nil {
		return nil, fmt.Errorf("evaluate policy %s: %w", p.Name, err)
	}
	memo := c.memo
	if p.noMemo.Load() {
		memo = nil
	}
	if memo == nil {
		return p.eval(ctx, c, doc, s)
	}
	key := memo.key(doc, s)
	if out, ok := memo.cache.get(key); ok {
		return slices.Clone(out), nil
	}
	out, err := p.eval(ctx, c, doc, s)
	if err == nil {
		memo.cache.add(key, slices.Clone(out))
	}
	return out, err
}

// eval runs the policy's query.
func (p *Policy) eval(ctx context.Context, c *compiled, doc *Document, s Settings) ([]Finding, error) {
	values, err := c.evalRules(ctx, &c.query, c.rules, ruleInput{doc: doc, reads: c.reads, params: s.paramsTerm()}, p.noPlan.Load())
	if err != nil {
		return nil, fmt.Errorf("evaluate policy %s: %w", p.Name, err)
	}
	if values == nil {
		return nil, nil
	}
	var out []Finding
	for i, rule := range c.rules {
		if values.terms != nil {
			// The plan's values are read as they are: converting them to Go values first cost a map per finding.
			if out, err = p.termFindings(out, rule, values.terms[i]); err != nil {
				return nil, err
			}
			continue
		}
		if out, err = p.jsonFindings(out, rule, values.bindings[rule]); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Message < out[j].Message
	})
	return out, nil
}

// jsonFindings appends the findings of rule's value v, a set as topdown returns it (a []any), to out.
func (p *Policy) jsonFindings(out []Finding, rule string, v any) ([]Finding, error) {
	raw, ok := v.([]any)
	if !ok {
		if v != nil {
			return nil, fmt.Errorf("policy %s: rule %s must be a set, got %T", p.Name, rule, v)
		}
		return out, nil
	}
	for _, item := range raw {
		f, keep, err := p.finding(item)
		if err != nil {
			return nil, fmt.Errorf("policy %s: rule %s: %w", p.Name, rule, err)
		}
		if keep {
			f.Warning = rule == "warn"
			out = append(out, f)
		}
	}
	return out, nil
}

// termFindings is jsonFindings for rule's value as the plan returns it, a Rego set; whatever is not a finding
// is reported as jsonFindings reports it, from its JSON value.
func (p *Policy) termFindings(out []Finding, rule string, t *ast.Term) ([]Finding, error) {
	set, ok := t.Value.(ast.Set)
	if !ok {
		v, err := ast.JSON(t.Value)
		if err != nil {
			return nil, fmt.Errorf("policy %s: rule %s: %w", p.Name, rule, err)
		}
		return p.jsonFindings(out, rule, v)
	}
	for _, item := range set.Slice() { // sorted, as topdown's JSON lists a set
		f, keep, ok := p.termFinding(item.Value)
		if !ok {
			v, err := ast.JSON(item.Value)
			if err != nil {
				return nil, fmt.Errorf("policy %s: rule %s: %w", p.Name, rule, err)
			}
			if f, keep, err = p.finding(v); err != nil {
				return nil, fmt.Errorf("policy %s: rule %s: %w", p.Name, rule, err)
			}
		}
		if keep {
			f.Warning = rule == "warn"
			out = append(out, f)
		}
	}
	return out, nil
}

// Keys of a finding object.
var (
	violatedKey = ast.InternedTerm("violated")
	messageKeys = [2]*ast.Term{ast.InternedTerm("message"), ast.InternedTerm("msg")}
	severityKey = ast.InternedTerm("severity")
	pathKey     = ast.InternedTerm("path")
	fixKey      = ast.InternedTerm("fix")
)

// termFinding is finding for a Rego value; ok is false when the value is not a well-formed finding, which finding
// then reports from its JSON value (the error messages name Go types).
func (p *Policy) termFinding(v ast.Value) (f Finding, keep, ok bool) {
	f = Finding{Severity: p.Severity, Fix: p.Remediation}
	switch v := v.(type) {
	case ast.String:
		f.Message = string(v)
		return f, true, true
	case ast.Object:
		if violated := v.Get(violatedKey); violated != nil {
			b, isBool := violated.Value.(ast.Boolean)
			if !isBool {
				return f, false, false
			}
			if !b {
				return f, false, true
			}
		}
		for _, key := range messageKeys {
			if s, isStr := stringAt(v, key); isStr && s != "" {
				f.Message = s
				break
			}
		}
		if f.Message == "" {
			return f, false, false
		}
		if s, isStr := stringAt(v, severityKey); isStr && s != "" {
			sev, err := ParseSeverity(s)
			if err != nil {
				return f, false, false
			}
			f.Severity = sev
		}
		if s, isStr := stringAt(v, pathKey); isStr {
			f.Path = s
		}
		if s, isStr := stringAt(v, fixKey); isStr && s != "" {
			f.Fix = s
		}
		return f, true, true
	}
	return f, false, false
}

// stringAt is obj[key] when it is a string.
func stringAt(obj ast.Object, key *ast.Term) (string, bool) {
	t := obj.Get(key)
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

// finding accepts the shapes users write: a string, {"message"|"msg", "severity", "path", "fix"}, and the policy
// documents' {"violated": bool, ...}, where violated=false reports nothing.
func (p *Policy) finding(item any) (Finding, bool, error) {
	f := Finding{Severity: p.Severity, Fix: p.Remediation}
	switch v := item.(type) {
	case string:
		f.Message = v
		return f, true, nil
	case map[string]any:
		if violated, present := v["violated"]; present {
			b, ok := violated.(bool)
			if !ok {
				return f, false, fmt.Errorf("field violated must be a boolean, got %T", violated)
			}
			if !b {
				return f, false, nil
			}
		}
		for _, key := range []string{"message", "msg"} {
			if s, ok := v[key].(string); ok && s != "" {
				f.Message = s
				break
			}
		}
		if f.Message == "" {
			return f, false, fmt.Errorf("a finding needs a non-empty string message (or msg), got %v", v)
		}
		if s, ok := v["severity"].(string); ok && s != "" {
			sev, err := ParseSeverity(s)
			if err != nil {
				return f, false, err
			}
			f.Severity = sev
		}
		if s, ok := v["path"].(string); ok {
			f.Path = s
		}
		if s, ok := v["fix"].(string); ok && s != "" {
			f.Fix = s
		}
		return f, true, nil
	}
	return f, false, fmt.Errorf("a finding must be a string or an object, got %T", item)
}
