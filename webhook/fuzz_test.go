package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook"
)

// FuzzReadReview POSTs arbitrary bytes to the validating handler, with the real pipeline behind it, and checks
// that every answer is an AdmissionReview the API server can read: never a panic, refused (allowed=false) with
// the HTTP status as its code whenever the status is not 200, and echoing a uid whenever it is 200.
func FuzzReadReview(f *testing.F) {
	_, metrics := newRegistry(f)
	h := newHandler(f, webhook.HandlerOptions{Decider: newEvaluator(f, trustedConfig, ""), Metrics: metrics})

	f.Add(mustJSON(review("uid-valid", privilegedDeployment())))
	f.Add(mustJSON(review("uid-compliant", threeContainerDeployment(), dryRun())))
	f.Add(mustJSON(review("uid-debug", pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("dbg", "busybox", privileged()))),
		operation(admissionv1.Update), subResource("ephemeralcontainers"), oldObject(pod("web", withContainer(ctr("app", trustedImage)))))))
	for _, c := range malformedCases() {
		if len(c.body) <= 64<<10 {
			f.Add(c.body)
		}
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type = %q, want application/json", ct)
		}
		var rv admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil {
			t.Fatalf("HTTP %d answer is not JSON: %v\n%s", rec.Code, err, rec.Body)
		}
		if rv.APIVersion != "admission.k8s.io/v1" || rv.Kind != "AdmissionReview" || rv.Response == nil {
			t.Fatalf("HTTP %d answer is not an admission.k8s.io/v1 AdmissionReview with a response:\n%s", rec.Code, rec.Body)
		}
		resp := rv.Response
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("a refusal without a result message:\n%s", rec.Body)
		}
		if rec.Code != http.StatusOK {
			if resp.Allowed {
				t.Fatalf("HTTP %d with allowed=true:\n%s", rec.Code, rec.Body)
			}
			if int(resp.Result.Code) != rec.Code {
				t.Fatalf("HTTP %d but result.code %d", rec.Code, resp.Result.Code)
			}
			return
		}
		if resp.UID == "" {
			t.Fatalf("HTTP 200 without a uid the API server could match:\n%s", rec.Body)
		}
		// The real pipeline decides or refuses every input; a 500 here is a recovered panic.
		if resp.Result != nil && resp.Result.Code == http.StatusInternalServerError {
			t.Fatalf("internal failure on this input: %s", resp.Result.Message)
		}
	})
}
