package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"
	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workload"
)

type traceOptions struct {
	policy    string
	files     []string
	config    string
	explain   string
	format    string
	now       string
	namespace string
	as        string
	asGroups  []string
}

// traceResult is one object's explanation in `attest policy trace --format json`.
type traceResult struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Policy    string `json:"policy"`
	// Mode is the policy's configured mode; Applies says whether its match scope selects the object.
	Mode    string `json:"mode"`
	Applies bool   `json:"applies"`
	// Findings are what the webhook's engine reports for the object (messages in the webhook's words).
	Findings []string `json:"findings"`
	// Rules are the values of the policy's result rules (violation, deny, warn) in the traced evaluation.
	Rules map[string]any `json:"rules"`
	// Trace is OPA's explanation, one line per event.
	Trace []string `json:"trace"`
}

// explainModes are OPA's --explain filters that make sense without the trace built-in (which policies may not
// call, so `notes` would always be empty).
var explainModes = map[string]func([]*topdown.Event) []*topdown.Event{
	"full":  lineage.Full,
	"fails": lineage.Fails,
	"debug": lineage.Debug,
}

func newTraceCommand() *cobra.Command {
	o := traceOptions{}
	cmd := &cobra.Command{
		Use:   "trace --policy NAME -f PATH...",
		Short: "Explain why a policy decided as it did for each object (OPA's explanation)",
		Long: "Evaluates one policy on each object of the manifests with OPA's tracer and prints, per object, the\n" +
			"engine's findings and the evaluation's explanation as `opa eval --explain` does: full (every step),\n" +
			"fails (the expressions that failed: why something was not found) or debug. The input is the one the\n" +
			"webhook builds (request as a CREATE by --as, parameters and production namespaces from --config,\n" +
			"image facts without signature verification, as in `attest policy check`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTrace(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", "", "the policy to explain (required)")
	f.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: every policy as the library ships it)")
	f.StringVar(&o.explain, "explain", "full", "explanation: full, fails or debug (as opa eval --explain)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now)")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.StringVar(&o.as, "as", "", "username of the requester (input.request.user.username)")
	f.StringArrayVar(&o.asGroups, "as-group", nil, "group of the requester (repeatable)")
	return cmd
}

func runTrace(cmd *cobra.Command, o traceOptions) error {
	if o.policy == "" {
		return usageError(fmt.Errorf("--policy is required"))
	}
	if len(o.files) == 0 {
		return usageError(fmt.Errorf("no input: pass -f FILE, -f DIR or -f -"))
	}
	filter, ok := explainModes[o.explain]
	if !ok {
		return usageError(fmt.Errorf("--explain must be full, fails or debug, got %q", o.explain))
	}
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	now, err := parseNow(o.now)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	engine, err := compileLibrary(ctx)
	if err != nil {
		return err
	}
	p, ok := engine.Lookup(o.policy)
	if !ok {
		return usageError(fmt.Errorf("--policy: unknown policy %q (see `attest policy list`)", o.policy))
	}
	cfg, err := loadConfig(ctx, o.config, engine)
	if err != nil {
		return usageError(err)
	}
	tracer, err := newPolicyTracer(p)
	if err != nil {
		return err
	}
	sources, err := manifest.Collect(o.files, cmd.InOrStdin())
	if err != nil {
		return usageError(err)
	}
	var results []traceResult
	err = eachObject(sources, func(obj manifest.Object) error {
		in := admission.ObjectInput(obj.Object, o.namespace, now)
		in.Request.Username, in.Request.Groups = o.as, o.asGroups
		r, err := tracer.explain(ctx, p, cfg, in, filter)
		if err != nil {
			return fmt.Errorf("%s:%d: %s %s: %w", obj.File, obj.Line, in.Request.Kind, in.Request.Name, err)
		}
		r.File, r.Line = obj.File, obj.Line
		results = append(results, r)
		return nil
	})
	if err != nil {
		return usageError(err)
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		if results == nil {
			results = []traceResult{}
		}
		return writeJSON(out, results)
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(out)
		}
		writeTraceText(out, r)
	}
	return nil
}

func writeTraceText(w io.Writer, r traceResult) {
	obj := r.Kind + " " + r.Name
	if r.Namespace != "" {
		obj = r.Kind + " " + r.Namespace + "/" + r.Name
	}
	fmt.Fprintf(w, "# %s (%s:%d): policy %s, mode %s", obj, r.File, r.Line, r.Policy, r.Mode)
	if !r.Applies {
		fmt.Fprint(w, ", outside its match scope (the webhook does not evaluate it here)")
	}
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "# no findings")
	} else {
		fmt.Fprintf(w, "# %s:\n", plural(len(r.Findings), "finding"))
		for _, f := range r.Findings {
			fmt.Fprintf(w, "#   %s\n", f)
		}
	}
	for _, line := range r.Trace {
		fmt.Fprintln(w, line)
	}
}

// policyTracer evaluates one policy's result rules with OPA's tracer, compiled from the library's sources with
// the engine's capabilities.
type policyTracer struct {
	compiler *ast.Compiler
	query    string
	rules    []string
}

// impureBuiltins mirrors policies/purity.go: the library sources traced here have already been accepted by
// policies.Compile, which refuses every call of these, so this only keeps the tracer's compiler as strict.
// (The policies package does not export its capabilities; see the report of this change.)
var impureBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "rego.parse_module", "trace", "time.now_ns", "rand.intn", "uuid.rfc4122"}

func newPolicyTracer(p *policies.Policy) (*policyTracer, error) {
	srcs, _, err := policies.Library()
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(srcs))
	var target *ast.Module
	for _, src := range srcs {
		mod, err := parseRego(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Name, err)
		}
		modules[src.Name] = mod
		if src.Name == p.File {
			target = mod
		}
	}
	if target == nil {
		return nil, fmt.Errorf("policy %s: source %s is not in the library (custom policies cannot be traced yet)", p.Name, p.File)
	}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool { return slices.Contains(impureBuiltins, b.Name) })
	compiler := ast.NewCompiler().WithCapabilities(caps)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile the library for tracing: %w", compiler.Errors)
	}
	t := &policyTracer{compiler: compiler}
	defined := map[string]bool{}
	for _, r := range target.Rules {
		defined[r.Head.Ref()[0].Value.String()] = true
	}
	var query []string
	for _, rule := range []string{"violation", "deny", "warn"} {
		if defined[rule] {
			t.rules = append(t.rules, rule)
			query = append(query, rule+" = "+target.Package.Path.Append(ast.StringTerm(rule)).String())
		}
	}
	t.query = strings.Join(query, "; ")
	return t, nil
}

// parseRego parses as the engine does: Rego v0 first (the policy documents' syntax, which also reads files that
// import rego.v1), then v1.
func parseRego(src policies.Source) (*ast.Module, error) {
	opts := func(v ast.RegoVersion) ast.ParserOptions {
		return ast.ParserOptions{ProcessAnnotation: true, RegoVersion: v}
	}
	mod, errV0 := ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV0))
	if errV0 == nil {
		return mod, nil
	}
	mod, errV1 := ast.ParseModuleWithOpts(src.Name, src.Text, opts(ast.RegoV1))
	if errV1 == nil {
		return mod, nil
	}
	return nil, errors.Join(errV0, errV1)
}

// explain evaluates the policy on one request twice: with the engine (the findings the webhook reports) and with
// the tracer (the explanation), on the same input document.
func (t *policyTracer) explain(ctx context.Context, p *policies.Policy, cfg *config.Config, in admission.Input, filter func([]*topdown.Event) []*topdown.Event) (traceResult, error) {
	req := in.Request
	s := cfg.Policies[p.Name]
	r := traceResult{
		Kind: req.Kind, Namespace: req.Namespace, Name: req.Name, Policy: p.Name, Mode: string(s.Mode),
		Applies:  s.Match.Applies(req.Kind, req.Namespace, nil, policies.ObjectLabels(in.Object)),
		Findings: []string{}, Rules: map[string]any{}, Trace: []string{},
	}
	input, err := policyInput(in, cfg)
	if err != nil {
		return r, err
	}
	doc, err := policies.NewDocument(input)
	if err != nil {
		return r, err
	}
	findings, err := p.Eval(ctx, doc, s)
	if err != nil {
		r.Findings = append(r.Findings, "the policy could not be evaluated: "+err.Error())
	}
	for _, f := range findings {
		v := admission.Violation{Policy: p.Name, Path: f.Path, Container: containerOf(input.Containers, f.Path), Message: f.Message, Fix: f.Fix}
		r.Findings = append(r.Findings, v.String())
	}
	value, err := ast.InterfaceToValue(inputDocument(input, s.Params))
	if err != nil {
		return r, fmt.Errorf("input: %w", err)
	}
	buf := topdown.NewBufferTracer()
	rs, err := rego.New(rego.Compiler(t.compiler), rego.Query(t.query), rego.ParsedInput(value), rego.QueryTracer(buf)).Eval(ctx)
	if err != nil {
		return r, fmt.Errorf("trace: %w", err)
	}
	if len(rs) > 0 {
		for _, rule := range t.rules {
			r.Rules[rule] = rs[0].Bindings[rule]
		}
	}
	var text bytes.Buffer
	topdown.PrettyTraceWithOpts(&text, filter(*buf), topdown.PrettyTraceOptions{Locations: true, ExprVariables: true})
	r.Trace = strings.Split(strings.TrimRight(text.String(), "\n"), "\n")
	return r, nil
}

// policyInput is the input the webhook builds for a request (admission's policyInput, which is not exported):
// containers from the pod specs, image facts without verification, the namespace's production flag.
func policyInput(in admission.Input, cfg *config.Config) (policies.Input, error) {
	gk := workload.GroupKind{Group: in.Request.Group, Kind: in.Request.Kind}
	containers, err := workload.Extract(gk, in.Request.SubResource, in.Object)
	if err != nil {
		return policies.Input{}, fmt.Errorf("cannot read the %s: %w", in.Request.Kind, err)
	}
	pcs := make([]policies.Container, len(containers))
	images := make(map[string]map[string]any, len(containers))
	for i, c := range containers {
		pcs[i] = policies.Container{Path: c.Path, PodPath: c.PodPath, Type: string(c.Type), Name: c.Name, Image: c.Image, Fields: c.Fields}
		if _, done := images[c.Image]; !done {
			images[c.Image] = admission.ImageInput(c.Image, cfg, nil)
		}
	}
	ns := in.Request.Namespace
	return policies.Input{
		Request: in.Request, Resource: in.Object, OldResource: in.OldObject,
		Namespace: policies.Namespace{
			Name: ns, Labels: in.NamespaceLabels, Annotations: in.NamespaceAnnotations,
			Production: ns != "" && cfg.Production.Matches(ns, in.NamespaceLabels),
		},
		Containers: pcs,
		Images:     images,
	}, nil
}

// inputDocument is the input document in the shape policies.NewDocument gives it, with params: the README's
// input contract.
func inputDocument(in policies.Input, params map[string]any) map[string]any {
	r := in.Request
	groups := make([]any, len(r.Groups))
	for i, g := range r.Groups {
		groups[i] = g
	}
	containers := make([]any, len(in.Containers))
	for i, c := range in.Containers {
		containers[i] = map[string]any{
			"path": c.Path, "pod_path": c.PodPath, "type": c.Type, "name": c.Name, "image": c.Image,
			"securityContext": c.Fields["securityContext"], "resources": c.Fields["resources"],
		}
	}
	images := make(map[string]any, len(in.Images))
	for k, v := range in.Images {
		images[k] = v
	}
	var old any
	if in.OldResource != nil {
		old = in.OldResource
	}
	if params == nil {
		params = map[string]any{}
	}
	return map[string]any{
		"request": map[string]any{
			"uid": r.UID, "operation": r.Operation,
			"kind":        map[string]any{"group": r.Group, "version": r.Version, "kind": r.Kind},
			"subresource": r.SubResource, "namespace": r.Namespace, "name": r.Name, "dry_run": r.DryRun,
			"user":         map[string]any{"username": r.Username, "groups": groups},
			"timestamp_ns": r.TimestampNS,
		},
		"resource":     in.Resource,
		"old_resource": old,
		"namespace": map[string]any{
			"name": in.Namespace.Name, "labels": anyMap(in.Namespace.Labels), "annotations": anyMap(in.Namespace.Annotations),
			"production": in.Namespace.Production,
		},
		"containers": containers,
		"images":     images,
		"params":     params,
	}
}

// containerOf names the container at path or above it, as the webhook's messages do.
func containerOf(cs []policies.Container, path string) string {
	for _, c := range cs {
		if path == c.Path || strings.HasPrefix(path, c.Path+".") {
			return c.Name
		}
	}
	return ""
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
