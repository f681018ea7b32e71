// Package workbench is the policy workbench: recorded admissions (or manifest objects) replayed through the
// webhook's own pipeline with a policy's source edited in place, the policy's trace, what changed against the
// recorded verdict, and snapshot tests written from what it reports. Its page (server.go) is served on loopback
// only.
package workbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// Options configure a Workbench.
type Options struct {
	// Sources are the policies to evaluate: the embedded library and the user's own (--policy).
	Sources []policies.Source
	// Config loads the configuration against an engine (compiled with the edited source), as the CLI would.
	Config func(*policies.Engine) (*config.Config, error)
	// Records are the inputs offered, newest first.
	Records []Record
	// SaveDir is where "save as test" writes _test.rego files.
	SaveDir string
	// Selected names the policy the page opens with ("" for the first).
	Selected string
}

// Workbench evaluates edited policies on recorded inputs. It is safe for concurrent use.
type Workbench struct {
	o       Options
	catalog []PolicySource
	mu      sync.Mutex // serialises writes of test files
}

// PolicySource is one policy the page can edit.
type PolicySource struct {
	Name string `json:"name"`
	File string `json:"file"`
	Text string `json:"text"`
	Mode string `json:"mode"`
}

// New compiles the sources once, to list the policies and their files.
func New(ctx context.Context, o Options) (*Workbench, error) {
	engine, err := policies.Compile(ctx, o.Sources)
	if err != nil {
		return nil, err
	}
	cfg, err := o.Config(engine)
	if err != nil {
		return nil, err
	}
	text := map[string]string{}
	for _, s := range o.Sources {
		text[s.Name] = s.Text
	}
	w := &Workbench{o: o}
	for _, p := range engine.Policies() {
		if _, ok := text[p.File]; !ok {
			continue // a policy of another language
		}
		w.catalog = append(w.catalog, PolicySource{Name: p.Name, File: p.File, Text: text[p.File], Mode: string(cfg.Policies[p.Name].Mode)})
	}
	if o.Selected != "" {
		if _, ok := w.lookup(o.Selected); !ok {
			return nil, fmt.Errorf("no policy named %q among the sources (see `attest policy list`)", o.Selected)
		}
	}
	if o.SaveDir == "" {
		w.o.SaveDir = "."
	}
	return w, nil
}

func (w *Workbench) lookup(name string) (PolicySource, bool) {
	for _, p := range w.catalog {
		if p.Name == name {
			return p, true
		}
	}
	return PolicySource{}, false
}

// Policies lists the editable policies, by name.
func (w *Workbench) Policies() []PolicySource { return w.catalog }

// Records lists the recorded inputs, newest first.
func (w *Workbench) Records() []Record { return w.o.Records }

// Selected is the policy the page opens with.
func (w *Workbench) Selected() string {
	if w.o.Selected != "" {
		return w.o.Selected
	}
	if len(w.catalog) > 0 {
		return w.catalog[0].Name
	}
	return ""
}

// EvalRequest is one evaluation asked for by the page.
type EvalRequest struct {
	Input RecordedInput `json:"input"`
	// Policy is the policy whose source is edited and traced; Source its text ("" keeps the file's).
	Policy string `json:"policy"`
	Source string `json:"source"`
	// Explain is the trace filter: full, fails, debug, or "" for no trace.
	Explain string `json:"explain"`
	// Record is the recorded admission to compare with (-1 or absent: none).
	Record *int `json:"record,omitempty"`
}

// CompileError is a compile or parse error at its place in a source.
type CompileError struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// EvalResult is what the page shows after "evaluate".
type EvalResult struct {
	CompileErrors []CompileError `json:"compileErrors,omitempty"`
	// Error is an input or configuration problem (not a verdict).
	Error string `json:"error,omitempty"`
	// Decision is allowed, warned, denied or error, as the audit annotation says; Message the denial message.
	Decision   string                `json:"decision,omitempty"`
	Message    string                `json:"message,omitempty"`
	Warnings   []string              `json:"warnings,omitempty"`
	Violations []admission.Violation `json:"violations,omitempty"`
	// Mode is the edited policy's effective mode; Findings its findings in the webhook's words.
	Mode     string   `json:"mode,omitempty"`
	Findings []string `json:"findings"`
	// Rules are the values of the policy's result rules (Rego syntax); Trace OPA's explanation.
	Rules map[string]string `json:"rules,omitempty"`
	Trace []string          `json:"trace,omitempty"`
	// Diff compares with the recorded admission, when one was given and recorded a verdict.
	Diff *Diff `json:"diff,omitempty"`
}

// Diff is what changed against the recorded verdict: the decision, and the messages added and removed.
type Diff struct {
	Before  string   `json:"before"`
	After   string   `json:"after"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Same    bool     `json:"same"`
}

// run is one evaluation's pipeline, engine and tracer.
type run struct {
	engine *policies.Engine
	eval   *admission.Evaluator
	cfg    *config.Config
	tracer *tracer
	policy PolicySource
}

// prepare compiles the sources with the policy's source replaced by text, loads the configuration against that
// engine and builds the pipeline as `attest policy check` does (images checked without a registry, as with
// --offline: the decision log keeps no image facts to replay).
func (w *Workbench) prepare(ctx context.Context, policy, text string) (*run, []CompileError, error) {
	ps, ok := w.lookup(policy)
	if !ok {
		return nil, nil, fmt.Errorf("no policy named %q", policy)
	}
	srcs := make([]policies.Source, len(w.o.Sources))
	copy(srcs, w.o.Sources)
	if text != "" {
		for i := range srcs {
			if srcs[i].Name == ps.File {
				srcs[i] = policies.Source{Name: ps.File, Text: text}
			}
		}
		ps.Text = text
	}
	engine, err := policies.Compile(ctx, srcs)
	if err != nil {
		return nil, compileErrors(err), nil
	}
	if _, ok := engine.Lookup(policy); !ok {
		return nil, []CompileError{{File: ps.File, Line: 1, Message: fmt.Sprintf("the source no longer defines policy %q (its METADATA custom.name)", policy)}}, nil
	}
	cfg, err := w.o.Config(engine)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	eval, err := admission.New(admission.Options{
		Engine: engine, Config: func() *config.Config { return cfg },
		Verifier: func(c *config.Config) admission.ImageVerifier { return attestation.NewOfflineVerifier(c.Trust) },
	})
	if err != nil {
		return nil, nil, err
	}
	tr, err := newTracer(srcs, ps.File)
	if err != nil {
		return nil, compileErrors(err), nil
	}
	return &run{engine: engine, eval: eval, cfg: cfg, tracer: tr, policy: ps}, nil, nil
}

// Evaluate runs the pipeline on the request's input with the edited policy, traces that policy and compares
// with the recorded verdict.
func (w *Workbench) Evaluate(ctx context.Context, req EvalRequest) (EvalResult, error) {
	res := EvalResult{Findings: []string{}}
	if req.Explain != "" {
		if _, ok := explainModes[req.Explain]; !ok {
			return res, fmt.Errorf("explain must be full, fails or debug, got %q", req.Explain)
		}
	}
	r, errs, err := w.prepare(ctx, req.Policy, req.Source)
	if err != nil {
		return res, err
	}
	if len(errs) > 0 {
		res.CompileErrors = errs
		return res, nil
	}
	in := req.Input.Admission()
	if in.Request.Operation == "" {
		in.Request.Operation = "CREATE"
	}
	d := r.eval.Evaluate(ctx, in)
	res.Decision = d.AuditAnnotations[admission.AnnotationDecision]
	res.Message, res.Warnings, res.Violations = d.Message, d.Warnings, d.Violations
	if d.Code == 400 {
		res.Error = d.Message
		return res, nil
	}
	res.Mode = string(r.cfg.Policies[req.Policy].Mode)
	for _, v := range d.Violations {
		if v.Policy == req.Policy {
			res.Findings = append(res.Findings, v.String())
		}
	}
	doc, err := r.eval.InputDocument(ctx, in, req.Policy)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	values, trace, err := r.tracer.eval(ctx, doc, req.Explain)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	res.Rules = map[string]string{}
	for k, v := range values {
		res.Rules[k] = v.String()
	}
	res.Trace = trace
	if req.Record != nil && *req.Record >= 0 && *req.Record < len(w.o.Records) {
		if rec := w.o.Records[*req.Record]; rec.Decision != "" {
			res.Diff = diff(rec, d)
		}
	}
	return res, nil
}

// diff compares the recorded verdict with the new decision, message by message.
func diff(rec Record, d admission.Decision) *Diff {
	before := map[string]bool{}
	for _, msgs := range rec.Policies {
		for _, m := range msgs {
			before[m] = true
		}
	}
	after := map[string]bool{}
	for _, v := range d.Violations {
		after[v.String()] = true
	}
	out := &Diff{Before: rec.Decision, After: d.AuditAnnotations[admission.AnnotationDecision], Added: []string{}, Removed: []string{}}
	for m := range after {
		if !before[m] {
			out.Added = append(out.Added, m)
		}
	}
	for m := range before {
		if !after[m] {
			out.Removed = append(out.Removed, m)
		}
	}
	sort.Strings(out.Added)
	sort.Strings(out.Removed)
	out.Same = out.Before == out.After && len(out.Added) == 0 && len(out.Removed) == 0
	return out
}

// SaveRequest asks for the evaluation of an input to be written as a snapshot test.
type SaveRequest struct {
	EvalRequest
	// Name names the test (test_<name>) and its file (<policy file>_<name>_test.rego).
	Name string `json:"name"`
}

// SaveResult names the file written.
type SaveResult struct {
	File string `json:"file"`
	Test string `json:"test"`
}

// ErrExists is returned when the test file to write is already there: the workbench never overwrites a file.
var ErrExists = errors.New("file exists")

// Save evaluates the request and writes a _test.rego with one test case asserting what the policy reports.
func (w *Workbench) Save(ctx context.Context, req SaveRequest) (SaveResult, []CompileError, error) {
	r, errs, err := w.prepare(ctx, req.Policy, req.Source)
	if err != nil || len(errs) > 0 {
		return SaveResult{}, errs, err
	}
	name := strings.TrimPrefix(TestName(req.Name), "test_")
	c, err := r.snapshotCase(ctx, req.Input, name, "")
	if err != nil {
		return SaveResult{}, nil, err
	}
	text, err := SnapshotTests(r.tracer.packageRef(),
		"Written by `attest policy workbench` (save as test): what policy "+req.Policy+" reports for this input today.\n"+
			"Run with the policy: attest policy test <policy dir or file> <this file> (--with-library for library policies).",
		[]Case{c})
	if err != nil {
		return SaveResult{}, nil, err
	}
	stem := strings.TrimSuffix(filepath.Base(r.policy.File), ".rego")
	file := filepath.Join(w.o.SaveDir, stem+"_"+name+"_test.rego")
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return SaveResult{}, nil, fmt.Errorf("%s: %w: choose another test name", file, ErrExists)
		}
		return SaveResult{}, nil, err
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return SaveResult{}, nil, fmt.Errorf("write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return SaveResult{}, nil, fmt.Errorf("write %s: %w", file, err)
	}
	return SaveResult{File: file, Test: "test_" + name}, nil, nil
}

// snapshotCase evaluates the policy of r on one input and makes the test case asserting its result rules.
func (r *run) snapshotCase(ctx context.Context, input RecordedInput, name, where string) (Case, error) {
	in := input.Admission()
	if in.Request.Operation == "" {
		in.Request.Operation = "CREATE"
	}
	doc, err := r.eval.InputDocument(ctx, in, r.policy.Name)
	if err != nil {
		return Case{}, err
	}
	values, _, err := r.tracer.eval(ctx, doc, "")
	if err != nil {
		return Case{}, err
	}
	object := in.Request.Kind + " " + in.Request.Name
	if in.Request.Namespace != "" {
		object = in.Request.Kind + " " + in.Request.Namespace + "/" + in.Request.Name
	}
	comment := in.Request.Operation + " " + object
	if where != "" {
		comment = where + ": " + comment
	}
	d := r.eval.Evaluate(ctx, in)
	for _, v := range d.Violations {
		if v.Policy == r.policy.Name {
			verdict := "warns"
			if v.Denied {
				verdict = "denies"
			}
			comment += "\n" + verdict + ": " + v.String()
		}
	}
	return Case{Name: name, Comment: comment, Input: doc, Rules: values}, nil
}

// Snapshot writes a _test.rego of one case per record, asserting what policy reports for each today (see
// SnapshotTests); the cases are named by their object. It is `attest policy generate-tests`.
func (w *Workbench) Snapshot(ctx context.Context, policy string, records []Record, header string) (string, error) {
	r, errs, err := w.prepare(ctx, policy, "")
	if err != nil {
		return "", err
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%s:%d: %s", errs[0].File, errs[0].Line, errs[0].Message)
	}
	cases := make([]Case, 0, len(records))
	for _, rec := range records {
		name := strings.ToLower(rec.Kind)
		if rec.Namespace != "" {
			name += "_" + rec.Namespace
		}
		name += "_" + rec.Name
		c, err := r.snapshotCase(ctx, rec.Input, name, rec.Source)
		if err != nil {
			return "", fmt.Errorf("%s: %w", rec.Source, err)
		}
		cases = append(cases, c)
	}
	return SnapshotTests(r.tracer.packageRef(), header, cases)
}

// Operation is the request's operation, CREATE when none is given.
func (r EvalRequest) Operation() string {
	if r.Input.Request.Operation == "" {
		return "CREATE"
	}
	return r.Input.Request.Operation
}

var locatedMessage = regexp.MustCompile(`^(.+?):(\d+)(?::(\d+))?: (.*)$`)

// compileErrors places each error of a compilation at its file and line: OPA's errors carry their location;
// other errors (METADATA, names) are "file: message" or "file:line: message".
func compileErrors(err error) []CompileError {
	var out []CompileError
	var add func(error)
	add = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				add(e)
			}
			return
		}
		var astErrs ast.Errors
		if errors.As(err, &astErrs) {
			for _, e := range astErrs {
				ce := CompileError{Message: e.Code + ": " + e.Message}
				if e.Location != nil {
					ce.File, ce.Line, ce.Column = e.Location.File, e.Location.Row, e.Location.Col
				}
				out = append(out, ce)
			}
			return
		}
		msg := err.Error()
		if m := locatedMessage.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[2])
			col, _ := strconv.Atoi(m[3])
			out = append(out, CompileError{File: m[1], Line: line, Column: col, Message: m[4]})
			return
		}
		file, rest, ok := strings.Cut(msg, ": ")
		if !ok {
			file, rest = "", msg
		}
		out = append(out, CompileError{File: file, Message: rest})
	}
	add(err)
	return out
}
