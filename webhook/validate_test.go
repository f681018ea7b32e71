package webhook_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

// annotatedViolation is one entry of the violations audit annotation.
type annotatedViolation struct {
	Policy string `json:"policy"`
	Path   string `json:"path"`
	Mode   string `json:"mode"`
	Denied bool   `json:"denied"`
}

// checkAnnotations compares the audit annotations: decision exactly, violations as decoded JSON.
func checkAnnotations(t *testing.T, got map[string]string, wantDecision string, wantViolations []annotatedViolation) {
	t.Helper()
	if got["decision"] != wantDecision {
		t.Errorf("auditAnnotations[decision] = %q, want %q (all: %v)", got["decision"], wantDecision, got)
	}
	raw, present := got["violations"]
	if wantViolations == nil {
		if present || len(got) != 1 {
			t.Errorf("auditAnnotations = %v, want only {decision: %s}", got, wantDecision)
		}
		return
	}
	var vs []annotatedViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("auditAnnotations[violations] = %q is not a JSON list: %v", raw, err)
	}
	if !reflect.DeepEqual(vs, wantViolations) {
		t.Errorf("auditAnnotations[violations] = %s, want %+v", raw, wantViolations)
	}
}

var privilegedViolation = []annotatedViolation{
	{Policy: "no-privileged", Path: "spec.template.spec.containers[0]", Mode: "enforce", Denied: true},
}

func TestValidateHTTPS(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	tests := []struct {
		name           string
		review         admissionv1.AdmissionReview
		wantAllowed    bool
		wantResult     *metav1.Status
		wantDecision   string
		wantViolations []annotatedViolation
	}{
		{
			name:   "privileged container is denied",
			review: review("uid-privileged", privilegedDeployment()),
			wantResult: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
				Reason: metav1.StatusReasonForbidden, Message: privilegedDenial},
			wantDecision:   "denied",
			wantViolations: privilegedViolation,
		},
		{
			name:   "dry run is denied alike",
			review: review("uid-privileged-dry-run", privilegedDeployment(), dryRun()),
			wantResult: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
				Reason: metav1.StatusReasonForbidden, Message: privilegedDenial},
			wantDecision:   "denied",
			wantViolations: privilegedViolation,
		},
		{
			name:         "compliant deployment is allowed",
			review:       review("uid-compliant", compliantDeployment()),
			wantAllowed:  true,
			wantDecision: "allowed",
		},
		{
			name:         "compliant deployment in a dry run is allowed",
			review:       review("uid-compliant-dry-run", compliantDeployment(), dryRun()),
			wantAllowed:  true,
			wantDecision: "allowed",
		},
		{
			name: "privileged init container of a three-container deployment is denied at its path",
			review: review("uid-init", deployment("shop",
				withInit(ctr("migrate", trustedImage, privileged())),
				withContainer(ctr("app", trustedImage)),
				withContainer(ctr("proxy", trustedImage)))),
			wantResult: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: "[no-privileged] spec.template.spec.initContainers[0] (migrate): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"},
			wantDecision: "denied",
			wantViolations: []annotatedViolation{
				{Policy: "no-privileged", Path: "spec.template.spec.initContainers[0]", Mode: "enforce", Denied: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, s, "/validate", mustJSON(tt.review))
			if a.status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200:\n%s", a.status, a.raw)
			}
			if a.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", a.contentType)
			}
			resp := a.review.Response
			if resp.UID != tt.review.Request.UID {
				t.Errorf("response.uid = %q, want %q", resp.UID, tt.review.Request.UID)
			}
			if resp.Allowed != tt.wantAllowed {
				t.Errorf("allowed = %v, want %v", resp.Allowed, tt.wantAllowed)
			}
			if !reflect.DeepEqual(resp.Result, tt.wantResult) {
				t.Errorf("result = %+v\nwant     %+v", resp.Result, tt.wantResult)
			}
			if len(resp.Warnings) != 0 {
				t.Errorf("warnings = %q, want none", resp.Warnings)
			}
			if resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("validating response carries a patch: %s", a.raw)
			}
			checkAnnotations(t, resp.AuditAnnotations, tt.wantDecision, tt.wantViolations)
		})
	}

	t.Run("dry run answers exactly as the real request", func(t *testing.T) {
		applied := post(t, s, "/validate", mustJSON(review("uid-same", privilegedDeployment()))).review.Response
		dry := post(t, s, "/validate", mustJSON(review("uid-same", privilegedDeployment(), dryRun()))).review.Response
		if !reflect.DeepEqual(applied, dry) {
			t.Errorf("dry-run response differs:\n applied %+v\n dry     %+v", applied, dry)
		}
	})
}

func TestValidateAuditMode(t *testing.T) {
	tests := []struct {
		name   string
		config string
		mode   policies.Mode
	}{
		{name: "config enforcement warn for no-privileged", config: auditConfig},
		{name: "global audit mode", config: trustedConfig, mode: policies.ModeAudit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serveDecider(t, newEvaluator(t, tt.config, tt.mode), webhook.HandlerOptions{})
			a := post(t, s, "/validate", mustJSON(review("uid-audit", privilegedDeployment())))
			resp := a.review.Response
			if a.status != http.StatusOK || !resp.Allowed || resp.Result != nil {
				t.Fatalf("HTTP %d, allowed=%v, result=%+v; want 200, allowed, no result:\n%s", a.status, resp.Allowed, resp.Result, a.raw)
			}
			if resp.UID != "uid-audit" {
				t.Errorf("response.uid = %q, want uid-audit", resp.UID)
			}
			if want := []string{"audit: " + privilegedDenial}; !reflect.DeepEqual(resp.Warnings, want) {
				t.Errorf("warnings = %q\nwant       %q", resp.Warnings, want)
			}
			checkAnnotations(t, resp.AuditAnnotations, "warned", []annotatedViolation{
				{Policy: "no-privileged", Path: "spec.template.spec.containers[0]", Mode: "audit", Denied: false},
			})
		})
	}
}

func TestValidateEphemeralContainers(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	running := pod("web", withContainer(ctr("app", trustedImage)))
	tests := []struct {
		name        string
		object      map[string]any
		old         map[string]any
		wantAllowed bool
		wantMessage string
	}{
		{
			name:   "privileged ephemeral container is denied at its path",
			object: pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("debugger", trustedImage, privileged()))),
			old:    running,
			wantMessage: "[no-privileged] spec.ephemeralContainers[0] (debugger): privileged containers are not allowed; " +
				"remove securityContext.privileged or add a PolicyException",
		},
		{
			name: "second ephemeral container privileged",
			object: pod("web", withContainer(ctr("app", trustedImage)),
				withEphemeral(ctr("debug-a", trustedImage)), withEphemeral(ctr("debug-b", trustedImage, privileged()))),
			old: pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("debug-a", trustedImage))),
			wantMessage: "[no-privileged] spec.ephemeralContainers[1] (debug-b): privileged containers are not allowed; " +
				"remove securityContext.privileged or add a PolicyException",
		},
		{
			name:        "unprivileged ephemeral container is allowed",
			object:      pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("debugger", trustedImage))),
			old:         running,
			wantAllowed: true,
		},
		{
			// The subresource can change only ephemeral containers; the Pod's own were judged when it was created.
			name: "only ephemeral containers are judged on the subresource",
			object: pod("web", withContainer(ctr("app", trustedImage, privileged())),
				withEphemeral(ctr("debugger", trustedImage))),
			old:         pod("web", withContainer(ctr("app", trustedImage, privileged()))),
			wantAllowed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := review("uid-debug", tt.object, operation(admissionv1.Update), subResource("ephemeralcontainers"),
				oldObject(tt.old), user("oncall@example.com", "sre"))
			rv.Request.Resource.Resource = "pods"
			a := post(t, s, "/validate", mustJSON(rv))
			resp := a.review.Response
			if a.status != http.StatusOK || resp.UID != "uid-debug" {
				t.Fatalf("HTTP %d, uid %q; want 200 and uid-debug:\n%s", a.status, resp.UID, a.raw)
			}
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v:\n%s", resp.Allowed, tt.wantAllowed, a.raw)
			}
			if tt.wantAllowed {
				if resp.Result != nil {
					t.Errorf("allowed response carries a result: %+v", resp.Result)
				}
				return
			}
			if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Message != tt.wantMessage {
				t.Errorf("result = %+v\nwant code 403 and message %q", resp.Result, tt.wantMessage)
			}
		})
	}
}

func TestMutateHTTPS(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	tests := []struct {
		name   string
		review admissionv1.AdmissionReview
	}{
		{name: "privileged deployment", review: review("uid-m-1", privilegedDeployment())},
		{name: "compliant deployment", review: review("uid-m-2", compliantDeployment())},
		{name: "dry run", review: review("uid-m-3", privilegedDeployment(), dryRun())},
		{name: "delete", review: review("uid-m-4", compliantDeployment(), operation(admissionv1.Delete))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, s, "/mutate", mustJSON(tt.review))
			resp := a.review.Response
			if a.status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200:\n%s", a.status, a.raw)
			}
			if resp.UID != tt.review.Request.UID || !resp.Allowed {
				t.Errorf("uid %q allowed %v; want uid %q and allowed", resp.UID, resp.Allowed, tt.review.Request.UID)
			}
			if resp.Patch != nil || resp.PatchType != nil || resp.Result != nil || len(resp.Warnings) != 0 {
				t.Errorf("mutating response carries a patch, result or warnings:\n%s", a.raw)
			}
		})
	}
}
