package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/continuums/attest/policies/gatekeeper"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
)

// Duration prints as gator prints run times ("0.012s").
type Duration time.Duration

func (d Duration) String() string { return fmt.Sprintf("%.3fs", time.Duration(d).Seconds()) }

// SuiteResult is the outcome of one Suite.
type SuiteResult struct {
	Name    string
	Skipped bool
	Runtime Duration
	Tests   []TestResult
}

// Failed tells whether a test of the Suite failed.
func (r *SuiteResult) Failed() bool {
	for i := range r.Tests {
		if r.Tests[i].Failed() {
			return true
		}
	}
	return false
}

// TestResult is the outcome of one Test: its template and constraint, then its cases.
type TestResult struct {
	Name    string
	Skipped bool
	// Err stopped the test before its cases (template, constraint, or an Invalid test that was valid).
	Err     error
	Runtime Duration
	Cases   []CaseResult
}

// Failed tells whether the test or one of its cases failed.
func (r *TestResult) Failed() bool {
	if r.Err != nil {
		return true
	}
	for i := range r.Cases {
		if r.Cases[i].Err != nil {
			return true
		}
	}
	return false
}

// CaseResult is the outcome of one Case; Err is why it failed.
type CaseResult struct {
	Name    string
	Skipped bool
	Err     error
	Runtime Duration
	// Print is the output of the policy's print() calls (only when the Runner collects it).
	Print string
}

// A Runner runs Suites read from a file system.
type Runner struct {
	FS fs.FS
	// Filter selects tests and cases (see NewFilter); nil runs all.
	Filter *Filter
	// Clock times the runs (k8s.io/utils/clock; clock.RealClock{} if nil).
	Clock clock.PassiveClock
	// Print collects the output of Rego print() calls per case (gator verify --verbose).
	Print bool
	// NoCEL runs templates without the K8sNativeValidation engine (their Rego, when they have both).
	NoCEL bool
	// Root is where FS is rooted, for the paths errors name ("/" for os.DirFS("/")); "" names FS paths.
	Root string
}

// show names a path of FS as the user knows it.
func (r *Runner) show(p string) string {
	if r.Root == "" {
		return p
	}
	return path.Join(r.Root, p)
}

// readFile reads a file of FS; an error names the file as the user knows it.
func (r *Runner) readFile(p string) ([]byte, error) {
	data, err := fs.ReadFile(r.FS, p)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = r.show(pe.Path)
	}
	return data, err
}

func (r *Runner) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func (r *Runner) since(t time.Time) Duration { return Duration(r.now().Sub(t)) }

// Run runs every test of the Suite.
func (r *Runner) Run(ctx context.Context, s *Suite) SuiteResult {
	if s.Skip {
		return SuiteResult{Name: s.Name, Skipped: true}
	}
	start := r.now()
	dir := path.Dir(s.Path)
	res := SuiteResult{Name: s.Name}
	for i := range s.Tests {
		t := &s.Tests[i]
		if t.Skip || !r.Filter.matchesTest(t) {
			res.Tests = append(res.Tests, TestResult{Name: t.Name, Skipped: true})
			continue
		}
		res.Tests = append(res.Tests, r.runTest(ctx, dir, t))
	}
	res.Runtime = r.since(start)
	return res
}

func (r *Runner) runTest(ctx context.Context, dir string, t *Test) TestResult {
	start := r.now()
	res := TestResult{Name: t.Name}
	_, err := r.client(ctx, dir, t, nil)
	switch {
	case t.Invalid && gatekeeper.IsSchemaError(err):
	case t.Invalid && err == nil:
		res.Err = fmt.Errorf("%w: got no error but want %w", ErrValidConstraint, gatekeeper.ErrSchema)
	case t.Invalid:
		res.Err = fmt.Errorf("%w: got error %w but want %w", ErrValidConstraint, err, gatekeeper.ErrSchema)
	case err != nil:
		res.Err = err
	default:
		if _, err := r.expander(dir, t); err != nil {
			res.Err = err
			break
		}
		for _, c := range t.Cases {
			if c.Skip || !r.Filter.matchesCase(t.Name, c.Name) {
				res.Cases = append(res.Cases, CaseResult{Name: c.Name, Skipped: true})
				continue
			}
			res.Cases = append(res.Cases, r.runCase(ctx, dir, t, c))
		}
	}
	res.Runtime = r.since(start)
	return res
}

// client returns a new Client holding the test's template and constraint.
func (r *Runner) client(ctx context.Context, dir string, t *Test, printed *bytes.Buffer) (*gatekeeper.Client, error) {
	if t.Template == "" {
		return nil, fmt.Errorf("%w: missing template", ErrInvalidSuite)
	}
	if t.Constraint == "" {
		return nil, fmt.Errorf("%w: missing constraint", ErrInvalidSuite)
	}
	opts := gatekeeper.Options{EnforcementPoint: gatekeeper.EnforcementPointGator, NoCEL: r.NoCEL}
	if printed != nil {
		opts.Print = printed
	}
	c, err := gatekeeper.New(opts)
	if err != nil {
		return nil, err
	}
	p := path.Join(dir, t.Template)
	data, err := r.readFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading ConstraintTemplate from %q: %w", r.show(p), err)
	}
	tmpl, err := gatekeeper.ParseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("%w: path %q: %w", ErrAddingTemplate, r.show(p), err)
	}
	if err := c.AddTemplate(ctx, tmpl); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddingTemplate, err)
	}
	p = path.Join(dir, t.Constraint)
	if data, err = r.readFile(p); err != nil {
		return nil, fmt.Errorf("reading Constraint from %q: %w", r.show(p), err)
	}
	k, err := gatekeeper.ParseConstraint(data)
	if err != nil {
		return nil, fmt.Errorf("%w: path %q: %w", ErrAddingConstraint, r.show(p), err)
	}
	if err := c.AddConstraint(ctx, k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddingConstraint, err)
	}
	return c, nil
}

func (r *Runner) runCase(ctx context.Context, dir string, t *Test, c *Case) CaseResult {
	start := r.now()
	var printed *bytes.Buffer
	if r.Print {
		printed = &bytes.Buffer{}
	}
	err := r.checkCase(ctx, dir, t, c, printed)
	res := CaseResult{Name: c.Name, Err: err, Runtime: r.since(start)}
	if printed != nil {
		res.Print = printed.String()
	}
	return res
}

func (r *Runner) checkCase(ctx context.Context, dir string, t *Test, c *Case, printed *bytes.Buffer) error {
	if c.Object == "" {
		return fmt.Errorf("%w: must define object", ErrInvalidCase)
	}
	if len(c.Assertions) == 0 {
		return fmt.Errorf("%w: assertions must be non-empty", ErrInvalidCase)
	}
	client, err := r.client(ctx, dir, t, printed)
	if err != nil {
		return err
	}
	p := path.Join(dir, c.Object)
	objs, err := r.readObjects(p)
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("%w: %q defines %d objects", ErrMultipleObjects, r.show(p), len(objs))
	}
	for _, inv := range c.Inventory {
		objs, err := r.readObjects(path.Join(dir, inv))
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := client.AddInventory(ctx, o); err != nil {
				return fmt.Errorf("%w: %w", ErrAddInventory, err)
			}
		}
	}
	exp, err := r.expander(dir, t)
	if err != nil {
		return err
	}
	results, err := review(ctx, client, exp, objs[0])
	if err != nil {
		return err
	}
	messages := make([]string, len(results))
	for i := range results {
		messages[i] = results[i].Message
	}
	for _, a := range c.Assertions {
		if err := a.Check(messages); err != nil {
			return err
		}
	}
	return nil
}

// expander holds the test's ExpansionTemplates (none without an expansion file).
func (r *Runner) expander(dir string, t *Test) (*gatekeeper.Expander, error) {
	e := gatekeeper.NewExpander()
	if t.Expansion == "" {
		return e, nil
	}
	p := path.Join(dir, t.Expansion)
	objs, err := r.readObjects(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExpansion, err)
	}
	for _, o := range objs {
		et, err := gatekeeper.ExpansionTemplateFrom(o)
		if err == nil {
			err = e.Add(et)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: path %q: %w", ErrExpansion, r.show(p), err)
		}
	}
	return e, nil
}

// review reviews an object as a CREATE, with what ExpansionTemplates generate from it, or an AdmissionReview's
// request as it stands.
func review(ctx context.Context, c *gatekeeper.Client, exp *gatekeeper.Expander, obj *unstructured.Unstructured) ([]gatekeeper.Result, error) {
	if obj.GetKind() != "AdmissionReview" || obj.GroupVersionKind().Group != admissionv1.SchemeGroupVersion.Group {
		results, err := c.ReviewExpanded(ctx, obj, exp)
		if err != nil {
			return nil, fmt.Errorf("reviewing %v %s/%s: %w", obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		return results, nil
	}
	var ar admissionv1.AdmissionReview
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.UnstructuredContent(), &ar, true); err != nil {
		return nil, fmt.Errorf("not a valid AdmissionReview object: %w", err)
	}
	if ar.Request == nil {
		return nil, errors.New("missing an AdmissionRequest object: request did not actually pass in an AdmissionRequest")
	}
	if ar.Request.Object.Raw == nil && ar.Request.OldObject.Raw == nil {
		return nil, errors.New(`no object or oldObject found to review: AdmissionRequest does not contain an "object" or "oldObject" to review`)
	}
	for _, raw := range [][]byte{ar.Request.Object.Raw, ar.Request.OldObject.Raw} {
		if raw == nil {
			continue
		}
		if err := (&unstructured.Unstructured{}).UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("object or oldObject cannot be unmarshalled: %w", err)
		}
	}
	return c.ReviewRequest(ctx, ar.Request)
}

func (r *Runner) readObjects(p string) ([]*unstructured.Unstructured, error) {
	data, err := r.readFile(p)
	if err != nil {
		return nil, err
	}
	objs, err := gatekeeper.ParseObjects(data)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", r.show(p), err)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: path %q defines no YAML objects", ErrNoObjects, r.show(p))
	}
	return objs, nil
}

// A Filter selects tests and cases by name, as gator verify --run does: "T//C" runs the cases matching C in
// the tests matching T; "X" runs the tests matching X and the cases matching X in any test.
type Filter struct {
	test, cse *regexp.Regexp // "T//C"
	either    *regexp.Regexp // "X"
}

// NewFilter parses a --run expression; "" selects everything.
func NewFilter(s string) (*Filter, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "//")
	if len(parts) > 2 {
		return nil, fmt.Errorf(`%w: a filter may include at most one "//"`, ErrInvalidFilter)
	}
	var res []*regexp.Regexp
	for _, p := range parts {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidFilter, err)
		}
		res = append(res, re)
	}
	if len(res) == 1 {
		return &Filter{either: res[0]}, nil
	}
	return &Filter{test: res[0], cse: res[1]}, nil
}

func (f *Filter) matchesTest(t *Test) bool {
	switch {
	case f == nil:
		return true
	case f.either == nil:
		return f.test.MatchString(t.Name)
	case f.either.MatchString(t.Name):
		return true
	}
	for _, c := range t.Cases {
		if f.matchesCase(t.Name, c.Name) {
			return true
		}
	}
	return false
}

func (f *Filter) matchesCase(test, cse string) bool {
	switch {
	case f == nil:
		return true
	case f.either != nil:
		return f.either.MatchString(cse) || f.either.MatchString(test)
	default:
		return f.cse.MatchString(cse) && f.test.MatchString(test)
	}
}
