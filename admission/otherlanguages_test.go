package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

type findings []policies.Finding

func (f findings) Evaluate(context.Context, *policies.Document, policies.Settings) ([]policies.Finding, error) {
	return f, nil
}

// fakeResources judges objects of group example.com: a spec.broken field is a problem.
type fakeResources struct{}

func (fakeResources) Validates(group, _ string) bool { return group == "example.com" }

func (fakeResources) Validate(_ context.Context, obj, _ map[string]any) []string {
	if spec, _ := obj["spec"].(map[string]any); spec["broken"] != nil {
		return []string{"spec.broken: does not compile"}
	}
	return nil
}

func otherEvaluator(t *testing.T, ps ...*policies.Policy) *admission.Evaluator {
	t.Helper()
	engine, err := policies.Compile(context.Background(), nil) // the policies given only
	if err != nil {
		t.Fatal(err)
	}
	if engine, err = engine.With(ps...); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default(engine)
	ev, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }, Resources: fakeResources{}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestRecordOnlyFindings: a record-only finding (a Gatekeeper dryrun) of an enforced policy neither denies nor
// warns, and is recorded in the violations audit annotation; a plain finding of the same policy denies.
func TestRecordOnlyFindings(t *testing.T) {
	for _, tc := range []struct {
		name         string
		f            policies.Finding
		allowed      bool
		warnings     int
		annotationOK bool
	}{
		{"record only", policies.Finding{Message: "dry", RecordOnly: true}, true, 0, true},
		{"warning", policies.Finding{Message: "warned", Warning: true}, true, 1, true},
		{"denial", policies.Finding{Message: "denied"}, false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policies.NewPolicy(policies.Metadata{Name: "Kind/c", DefaultMode: policies.ModeEnforce}, findings{tc.f})
			if err != nil {
				t.Fatal(err)
			}
			d := otherEvaluator(t, p).Evaluate(context.Background(), Create(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}})))
			if d.Allowed != tc.allowed || len(d.Warnings) != tc.warnings {
				t.Fatalf("allowed %v warnings %q, want %v and %d", d.Allowed, d.Warnings, tc.allowed, tc.warnings)
			}
			if got := strings.Contains(d.AuditAnnotations[admission.AnnotationViolations], "Kind/c"); got != tc.annotationOK {
				t.Fatalf("violations annotation %q", d.AuditAnnotations[admission.AnnotationViolations])
			}
		})
	}
}

// TestResourceValidator: objects of the groups a ResourceValidator judges are refused with its problems, by field,
// and no policy runs on them.
func TestResourceValidator(t *testing.T) {
	ev := otherEvaluator(t)
	in := func(spec map[string]any) admission.Input {
		return admission.Input{
			Request: admission.Request{Operation: "CREATE", Group: "example.com", Version: "v1", Kind: "Template", Name: "t"},
			Object:  map[string]any{"apiVersion": "example.com/v1", "kind": "Template", "metadata": map[string]any{"name": "t"}, "spec": spec},
		}
	}
	d := ev.Evaluate(context.Background(), in(map[string]any{"broken": true}))
	if d.Allowed || d.Message != "[Template] spec.broken: does not compile" {
		t.Fatalf("broken: allowed %v, message %q", d.Allowed, d.Message)
	}
	if d := ev.Evaluate(context.Background(), in(map[string]any{})); !d.Allowed || len(d.Results) != 0 {
		t.Fatalf("valid: allowed %v, %d policies ran", d.Allowed, len(d.Results))
	}
}
