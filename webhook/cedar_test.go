package webhook_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

// TestCedarSeesUserInfoAndOptions: what a Cedar policy reads beyond the Rego input reaches it from the
// AdmissionReview: userInfo.extra (context.mfa), userInfo.uid (the principal's id) and the DeleteOptions of a
// DELETE (context.options), and a DELETE is judged because a loaded policy asks for deletions.
func TestCedarSeesUserInfoAndOptions(t *testing.T) {
	dir := t.TempDir()
	rules := `@id("mfa") @message("needs MFA")
forbid (principal, action == k8s::admission::Action::"create", resource) when { !context.mfa };
@id("uid") @message("blocked account")
forbid (principal == k8s::User::"uid-42", action, resource);
@id("force") @message("no forced deletion")
forbid (principal, action == k8s::admission::Action::"delete", resource)
when { context has options && context.options has gracePeriodSeconds && context.options.gracePeriodSeconds == 0 };
`
	if err := os.WriteFile(filepath.Join(dir, "people.cedar"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serveDecider(t, newEvaluator(t, trustedConfig+"cedar:\n  directories: ["+dir+"]\n", ""), webhook.HandlerOptions{})
	withUser := func(uid string, extra map[string]authenticationv1.ExtraValue) reqOpt {
		return func(r *admissionv1.AdmissionRequest) {
			r.UserInfo = authenticationv1.UserInfo{Username: "alice", UID: uid, Extra: extra}
		}
	}
	deleting := func(grace string) reqOpt {
		return func(r *admissionv1.AdmissionRequest) {
			r.Operation, r.OldObject, r.Object = admissionv1.Delete, r.Object, runtime.RawExtension{}
			r.Options = runtime.RawExtension{Raw: []byte(`{"apiVersion":"meta.k8s.io/v1","kind":"DeleteOptions"` + grace + `}`)}
		}
	}
	mfa := map[string]authenticationv1.ExtraValue{"amr": {"pwd", "mfa"}}
	tests := []struct {
		name    string
		opts    []reqOpt
		allowed bool
		message string
	}{
		{"no MFA", []reqOpt{withUser("", nil)}, false, "[people]: needs MFA"},
		{"MFA from userInfo.extra", []reqOpt{withUser("", mfa)}, true, ""},
		{"the principal is userInfo.uid", []reqOpt{withUser("uid-42", mfa)}, false, "[people]: blocked account"},
		{"a forced deletion", []reqOpt{withUser("", nil), deleting(`,"gracePeriodSeconds":0`)}, false, "[people]: no forced deletion"},
		{"a graceful deletion", []reqOpt{withUser("", nil), deleting(`,"propagationPolicy":"Background"`)}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, "/validate", mustJSON(review("u1", compliantDeployment(), tc.opts...)))
			r := a.review.Response
			msg := ""
			if r.Result != nil {
				msg = r.Result.Message
			}
			if r.Allowed != tc.allowed || !strings.Contains(msg, tc.message) {
				t.Fatalf("allowed %v message %q, want %v %q", r.Allowed, msg, tc.allowed, tc.message)
			}
		})
	}
}

// TestUnreadableOptions: request.options that is not an object is a request ATTEST cannot read (400, named).
func TestUnreadableOptions(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	rv := review("u1", compliantDeployment(), func(r *admissionv1.AdmissionRequest) { r.Options = runtime.RawExtension{Raw: []byte(`[1]`)} })
	a := post(t, s, "/validate", mustJSON(rv))
	r := a.review.Response
	if r.Allowed || r.Result == nil || r.Result.Code != 400 || !strings.Contains(r.Result.Message, "request.options: expected a JSON object, got array") {
		t.Fatalf("response %+v", r.Result)
	}
}

// TestCedarEvaluationsLabelledCedar: the evaluation-duration histogram names the engine that evaluated each policy:
// the Cedar set "cedar", the library's Rego "opa".
func TestCedarEvaluationsLabelledCedar(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.cedar"), []byte(`@id("alice") @message("not alice")
forbid (principal == k8s::User::"alice", action, resource);
`), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, metrics := newRegistry(t)
	eval := newEvaluator(t, trustedConfig+"cedar:\n  directories: ["+dir+"]\n", "")
	validate := newHandler(t, webhook.HandlerOptions{Decider: eval, Metrics: metrics})
	s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: validate, Gatherer: reg})
	post(t, s, "/validate", mustJSON(review("uid-1", compliantDeployment())))
	_, body := get(t, s, s.MetricsURL+"/metrics")
	for _, want := range []string{
		`attest_policy_evaluation_duration_seconds_count{engine="cedar"} 1`,
		`attest_policy_evaluation_duration_seconds_count{engine="opa"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(body, "attest_policy_evaluation_duration_seconds_count"))
		}
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
