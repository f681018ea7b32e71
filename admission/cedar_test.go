package admission_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
)

// cedarEvaluator is the pipeline with examples/cedar's policy set (the policy "production") and the foundation.
func cedarEvaluator(t *testing.T, extra string) *admission.Evaluator {
	t.Helper()
	dir, err := filepath.Abs("../examples/cedar")
	if err != nil {
		t.Fatal(err)
	}
	return Pipeline(t, TrustedConfig+extra+"cedar:\n  directories: ["+dir+"]\n", "", Foundation...)
}

func inProduction(in admission.Input, user string, groups ...string) admission.Input {
	in.Request.Namespace = "shop"
	in.NamespaceLabels = map[string]string{"environment": "production"}
	in.Request.Username, in.Request.Groups = user, groups
	return in
}

func deleteOf(obj map[string]any, options map[string]any) admission.Input {
	in := Create(obj)
	in.Request.Operation, in.Object, in.OldObject, in.Request.Options = "DELETE", nil, obj, options
	return in
}

// TestCedarInThePipeline: a Cedar policy set is one policy with the pipeline's modes, messages and operations.
func TestCedarInThePipeline(t *testing.T) {
	deployment := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}})
	ctx := context.Background()
	tests := []struct {
		name    string
		extra   string
		in      admission.Input
		allowed bool
		message string
		warning string
	}{
		{"developer deploying to production", "", inProduction(Create(deployment), "dana", "developers"), false,
			"[production]: developers have read-only access to production namespaces; deploy to a development namespace, or ask an SRE or a platform admin to make the change", ""},
		{"in audit mode it warns", "  - name: production\n    mode: audit\n", inProduction(Create(deployment), "dana", "developers"), true, "",
			"audit: [production]: developers have read-only access to production namespaces; deploy to a development namespace, or ask an SRE or a platform admin to make the change"},
		{"audit deleting a production deployment", "", inProduction(deleteOf(deployment, nil), "ann", "audit"), false,
			"[production]: the audit group may read but never change or delete", ""},
		{"sre deleting a production deployment", "", inProduction(deleteOf(deployment, map[string]any{"propagationPolicy": "Background"}), "sam", "sre"), true, "", ""},
		{"sre force-deleting", "", inProduction(deleteOf(deployment, map[string]any{"gracePeriodSeconds": int64(0)}), "sam", "sre"), false,
			"[production]: forced deletion (gracePeriodSeconds 0) needs an EMERGENCY- approval on the object; delete without --force/--grace-period=0, or annotate the object with an EMERGENCY- approval id first", ""},
		{"policy off: deletes are not judged", "  - name: production\n    mode: \"off\"\n", inProduction(deleteOf(deployment, nil), "ann", "audit"), true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := cedarEvaluator(t, tc.extra).Evaluate(ctx, tc.in)
			if d.Allowed != tc.allowed || d.Message != tc.message {
				t.Fatalf("allowed %v message %q, want %v %q", d.Allowed, d.Message, tc.allowed, tc.message)
			}
			if tc.warning != "" && (len(d.Warnings) != 1 || d.Warnings[0] != tc.warning) {
				t.Fatalf("warnings %q, want %q", d.Warnings, tc.warning)
			}
		})
	}
	// Without a policy that judges deletes, a DELETE is allowed without evaluation, as before.
	plain := Pipeline(t, TrustedConfig, "", Foundation...)
	if d := plain.Evaluate(ctx, inProduction(deleteOf(deployment, nil), "ann", "audit")); !d.Allowed || len(d.Results) != 0 {
		t.Fatalf("a delete with no policy for it: %+v", d)
	}
}
