package policies_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

// evaluatorFunc adapts a function to policies.Evaluator.
type evaluatorFunc func(ctx context.Context, doc *policies.Document, s policies.Settings) ([]policies.Finding, error)

func (f evaluatorFunc) Evaluate(ctx context.Context, doc *policies.Document, s policies.Settings) ([]policies.Finding, error) {
	return f(ctx, doc, s)
}

// TestEvaluatorPolicies: a policy of another language runs through Eval with the document and validated
// parameters, joins an engine beside Rego policies, and cannot take a Rego policy's name.
func TestEvaluatorPolicies(t *testing.T) {
	engine, err := compile(t, policies.Source{Name: "p.rego", Text: `# METADATA
# custom:
#   name: rego-one
package p
violation contains "rego" if { input.resource.kind == "Pod" }`})
	if err != nil {
		t.Fatal(err)
	}
	echo := evaluatorFunc(func(_ context.Context, doc *policies.Document, s policies.Settings) ([]policies.Finding, error) {
		if doc.Input().Resource["kind"] == "Boom" {
			return nil, errors.New("cannot judge a Boom")
		}
		return []policies.Finding{{Message: doc.Input().Request.Username + " " + s.Params["word"].(string)}}, nil
	})
	md := policies.Metadata{Name: "other-one", File: "other.cedar", Parameters: map[string]any{
		"word": map[string]any{"type": "string", "default": "hello"},
	}}
	p, err := policies.NewPolicy(md, echo)
	if err != nil {
		t.Fatal(err)
	}
	if p.Severity != policies.SeverityMedium || p.DefaultMode != policies.ModeEnforce || p.HasPatch() || p.HasSample() {
		t.Errorf("defaults: severity %s mode %s patch %v sample %v", p.Severity, p.DefaultMode, p.HasPatch(), p.HasSample())
	}
	if p.Evaluator() == nil {
		t.Error("Evaluator() = nil")
	}
	joined, err := engine.With(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range joined.Policies() {
		names = append(names, q.Name)
	}
	if got := strings.Join(names, ","); got != "other-one,rego-one" {
		t.Errorf("joined policies = %s", got)
	}
	if len(engine.Policies()) != 1 {
		t.Errorf("With changed the engine it was called on: %d policies", len(engine.Policies()))
	}

	for _, tt := range []struct {
		name, kind, wantMsg, wantErr string
		params                       map[string]any
	}{
		{name: "defaults", kind: "Pod", wantMsg: "alice hello"},
		{name: "parameters", kind: "Pod", params: map[string]any{"word": "bye"}, wantMsg: "alice bye"},
		{name: "evaluator error names the policy", kind: "Boom", wantErr: "evaluate policy other-one: cannot judge a Boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := p.NewSettings(policies.ModeEnforce, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := policies.NewDocument(policies.Input{Request: policies.Request{Username: "alice"}, Resource: map[string]any{"kind": tt.kind}})
			if err != nil {
				t.Fatal(err)
			}
			fs, err := p.Eval(context.Background(), doc, s)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(fs) != 1 || fs[0].Message != tt.wantMsg {
				t.Fatalf("findings = %v, %v; want %q", fs, err, tt.wantMsg)
			}
		})
	}

	if _, err := p.NewSettings(policies.ModeEnforce, map[string]any{"word": 3}); err == nil {
		t.Error("a parameter against the schema was accepted")
	}
	if _, err := joined.With(p); err == nil || !strings.Contains(err.Error(), "name is taken") {
		t.Errorf("duplicate name: err = %v", err)
	}
	if _, err := policies.NewPolicy(md, nil); err == nil {
		t.Error("a policy without an evaluator was made")
	}
}
