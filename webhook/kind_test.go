package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/webhook"
)

// requestKind sets request.kind, which the API server derives from the resource, independently of the object.
func requestKind(group, version, kind string) reqOpt {
	return func(r *admissionv1.AdmissionRequest) {
		r.Kind = metav1.GroupVersionKind{Group: group, Version: version, Kind: kind}
	}
}

// withTypeMeta returns obj with apiVersion and kind set to the given values; nil deletes the field.
func withTypeMeta(obj map[string]any, apiVersion, kind any) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		out[k] = v
	}
	for field, v := range map[string]any{"apiVersion": apiVersion, "kind": kind} {
		if v == nil {
			delete(out, field)
		} else {
			out[field] = v
		}
	}
	return out
}

// TestReviewKindMustMatchObject is issue 13's second finding: containers are extracted by request.kind, so a
// review whose kind disagrees with the object's own apiVersion/kind would have a privileged Deployment judged as
// a Pod (and pass). Such a review is a request ATTEST cannot read: 400 with the UID, never allowed.
func TestReviewKindMustMatchObject(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	tests := []struct {
		name        string
		review      admissionv1.AdmissionReview
		wantCode    int32 // 0: allowed
		wantMessage string
	}{
		{
			name:     "Pod kind carrying a privileged Deployment",
			review:   review("uid-pod-kind", privilegedDeployment(), requestKind("", "v1", "Pod")),
			wantCode: http.StatusBadRequest,
			wantMessage: `request.object is apps/v1 Deployment, but request.kind is v1 Pod: ATTEST judges an object as the kind it states, ` +
				`and cannot read a review whose kind and object disagree`,
		},
		{
			name:        "Deployment kind carrying a privileged Pod",
			review:      review("uid-deploy-kind", pod("web", withContainer(ctr("app", trustedImage, privileged()))), requestKind("apps", "v1", "Deployment")),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.object is v1 Pod, but request.kind is apps/v1 Deployment",
		},
		{
			name:        "kind of another workload",
			review:      review("uid-rs-kind", privilegedDeployment(), requestKind("apps", "v1", "ReplicaSet")),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.object is apps/v1 Deployment, but request.kind is apps/v1 ReplicaSet",
		},
		{
			name:        "same kind in another group",
			review:      review("uid-group", privilegedDeployment(), requestKind("extensions", "v1beta1", "Deployment")),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.object is apps/v1 Deployment, but request.kind is extensions/v1beta1 Deployment",
		},
		{
			name:        "object states only a disagreeing kind",
			review:      review("uid-kind-only", withTypeMeta(privilegedDeployment(), nil, "Deployment"), requestKind("", "v1", "Pod")),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.object is Deployment, but request.kind is v1 Pod",
		},
		{
			name:        "kind is not a string",
			review:      review("uid-kind-number", withTypeMeta(privilegedDeployment(), "apps/v1", 42), requestKind("apps", "v1", "Deployment")),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.object.kind: expected a string, got number",
		},
		{
			name: "UPDATE whose old object is of another kind",
			review: review("uid-old-kind", privilegedDeployment(), operation(admissionv1.Update),
				oldObject(pod("web", withContainer(ctr("app", trustedImage))))),
			wantCode:    http.StatusBadRequest,
			wantMessage: "request.oldObject is v1 Pod, but request.kind is apps/v1 Deployment",
		},
		{
			name:        "agreeing kinds are judged",
			review:      review("uid-agree", privilegedDeployment()),
			wantCode:    http.StatusForbidden,
			wantMessage: privilegedDenial,
		},
		{
			name:        "an object that states no kind is judged as request.kind",
			review:      review("uid-no-typemeta", withTypeMeta(privilegedDeployment(), nil, nil), requestKind("apps", "v1", "Deployment")),
			wantCode:    http.StatusForbidden,
			wantMessage: privilegedDenial,
		},
		{
			// CONNECT carries the options (PodExecOptions) as its object, under the Pod's kind; it is not judged.
			name: "CONNECT with its options object",
			review: review("uid-connect", map[string]any{"apiVersion": "v1", "kind": "PodExecOptions", "command": []any{"sh"}},
				requestKind("", "v1", "Pod"), operation(admissionv1.Connect)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, s, "/validate", mustJSON(tt.review))
			resp := a.review.Response
			if a.status != http.StatusOK || resp.UID != tt.review.Request.UID {
				t.Fatalf("HTTP %d, uid %q; want 200 and %q:\n%s", a.status, resp.UID, tt.review.Request.UID, a.raw)
			}
			if tt.wantCode == 0 {
				if !resp.Allowed {
					t.Fatalf("refused, want allowed:\n%s", a.raw)
				}
				return
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed, want code %d:\n%s", tt.wantCode, a.raw)
			}
			if resp.Result.Code != tt.wantCode || !strings.Contains(resp.Result.Message, tt.wantMessage) {
				t.Errorf("result = %d %q\nwant     %d containing %q", resp.Result.Code, resp.Result.Message, tt.wantCode, tt.wantMessage)
			}
			if tt.wantCode == http.StatusBadRequest && resp.AuditAnnotations["decision"] != "error" {
				t.Errorf("auditAnnotations = %v, want decision=error", resp.AuditAnnotations)
			}
		})
	}
}

// FuzzReviewKindAgreement sends a privileged workload under a fuzzed request.kind with a fuzzed apiVersion and
// kind in the object, through the validating and the mutating handler with the real pipeline, and checks that
// a review whose kind disagrees with its object is never allowed by /validate and never patched by /mutate.
func FuzzReviewKindAgreement(f *testing.F) {
	validate := newHandler(f, webhook.HandlerOptions{Decider: newEvaluator(f, trustedConfig, "")})
	mutate := newHandler(f, webhook.HandlerOptions{Decider: newEvaluator(f, trustedConfig, ""), Mutating: true})
	f.Add("", "v1", "Pod", "apps/v1", "Deployment", false)
	f.Add("apps", "v1", "Deployment", "v1", "Pod", true)
	f.Add("apps", "v1", "Deployment", "apps/v1", "Deployment", false)
	f.Add("batch", "v1", "CronJob", "batch/v1", "Job", false)
	f.Add("apps", "v1beta2", "Deployment", "apps/v1", "Deployment", true)
	f.Add("", "v1", "Pod", "v1", "pod", false)
	f.Add("", "v1", "Pod", "/v1", "Pod", false)
	f.Add("", "", "", "", "", false)

	f.Fuzz(func(t *testing.T, group, version, kind, apiVersion, objKind string, update bool) {
		reqAPIVersion := version
		if group != "" {
			reqAPIVersion = group + "/" + version
		}
		agree := apiVersion == reqAPIVersion && objKind == kind
		// The same privileged container wherever the object's kind might keep its pod spec.
		c := []any{ctr("app", trustedImage, privileged())}
		spec := map[string]any{"containers": c}
		template := map[string]any{"spec": spec}
		obj := map[string]any{
			"apiVersion": apiVersion, "kind": objKind, "metadata": map[string]any{"name": "web", "namespace": "shop"},
			"spec": map[string]any{"containers": c, "template": template, "jobTemplate": map[string]any{"spec": map[string]any{"template": template}}},
		}
		opts := []reqOpt{requestKind(group, version, kind)}
		if update {
			opts = append(opts, operation(admissionv1.Update), oldObject(obj))
		}
		body := mustJSON(review("uid-fuzz", obj, opts...))
		for _, h := range []*webhook.Handler{validate, mutate} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var rv admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || rv.Response == nil {
				t.Fatalf("HTTP %d answer is not an AdmissionReview: %v\n%s", rec.Code, err, rec.Body)
			}
			resp := rv.Response
			if agree {
				continue
			}
			if resp.Allowed || resp.Patch != nil {
				t.Fatalf("request.kind %q %q %q with an object of apiVersion %q kind %q was allowed (patch %s):\n%s",
					group, version, kind, apiVersion, objKind, resp.Patch, rec.Body)
			}
			if resp.UID != "uid-fuzz" || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Fatalf("disagreeing kinds: want a 400 with the uid, got:\n%s", rec.Body)
			}
		}
	})
}
