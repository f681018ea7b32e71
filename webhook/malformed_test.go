package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/continuums/attest/webhook"
)

// bigDeployment is a Deployment whose annotation makes the review about 8 MiB, beyond webhook.MaxRequestBytes.
func bigDeployment() map[string]any {
	return annotatedDeployment(8 << 20)
}

// annotatedDeployment is a compliant Deployment carrying an annotation of n bytes.
func annotatedDeployment(n int) map[string]any {
	d := compliantDeployment()
	d["metadata"].(map[string]any)["annotations"] = map[string]any{"blob": strings.Repeat("x", n)}
	return d
}

// withRequestField replaces one field of the request of a valid review with raw JSON.
func withRequestField(field, raw string) []byte {
	var doc map[string]any
	if err := json.Unmarshal(mustJSON(review("uid-raw", compliantDeployment())), &doc); err != nil {
		panic(err)
	}
	req := doc["request"].(map[string]any)
	if raw == "" {
		delete(req, field)
	} else {
		req[field] = rawJSON(raw)
	}
	return mustJSON(doc)
}

// malformedCase is a request the webhook cannot read, and what it must answer.
type malformedCase struct {
	name        string
	method      string
	contentType string
	body        []byte
	chunked     bool // send without Content-Length
	wantStatus  int
	wantCode    int32
	wantUID     string
	wantPhrase  string
}

func malformedCases() []malformedCase {
	valid := review("uid-valid", compliantDeployment())
	v1beta1 := review("uid-beta", compliantDeployment())
	v1beta1.APIVersion = "admission.k8s.io/v1beta1"
	wrongKind := review("uid-kind", compliantDeployment())
	wrongKind.Kind = "AdmissionRequest"
	noRequest := valid
	noRequest.Request = nil
	noUID := review("", compliantDeployment())
	big := mustJSON(review("uid-big", bigDeployment()))
	return []malformedCase{
		{name: "not JSON", body: []byte("{this is not json"), wantStatus: 400, wantCode: 400, wantPhrase: "request body is not an AdmissionReview"},
		{name: "JSON array", body: []byte(`[{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}]`), wantStatus: 400, wantCode: 400, wantPhrase: "request body is not an AdmissionReview"},
		{name: "JSON string", body: []byte(`"AdmissionReview"`), wantStatus: 400, wantCode: 400, wantPhrase: "request body is not an AdmissionReview"},
		{name: "JSON null", body: []byte(`null`), wantStatus: 400, wantCode: 400, wantPhrase: "set admissionReviewVersions: [v1]"},
		{name: "wrong apiVersion v1beta1", body: mustJSON(v1beta1), wantStatus: 400, wantCode: 400, wantPhrase: `unsupported "admission.k8s.io/v1beta1"`},
		{name: "wrong kind", body: mustJSON(wrongKind), wantStatus: 400, wantCode: 400, wantPhrase: `"AdmissionRequest": ATTEST reads kind AdmissionReview`},
		{name: "missing request", body: mustJSON(noRequest), wantStatus: 400, wantCode: 400, wantPhrase: "AdmissionReview has no request"},
		{name: "request without uid", body: mustJSON(noUID), wantStatus: 400, wantCode: 400, wantPhrase: "request has no uid"},
		{name: "object is a JSON string", body: withRequestField("object", `"a Deployment"`), wantStatus: 200, wantCode: 400, wantUID: "uid-raw",
			wantPhrase: "request.object: expected a JSON object, got string"},
		{name: "object is a JSON array", body: withRequestField("object", `[{"kind":"Deployment"}]`), wantStatus: 200, wantCode: 400, wantUID: "uid-raw",
			wantPhrase: "request.object: expected a JSON object, got array"},
		{name: "oldObject is a number", body: withRequestField("oldObject", `42`), wantStatus: 200, wantCode: 400, wantUID: "uid-raw",
			wantPhrase: "request.oldObject: expected a JSON object, got number"},
		{name: "object with a number out of range", body: withRequestField("object", `{"apiVersion":"v1","kind":"Pod","spec":{"x":1e400}}`), wantStatus: 200, wantCode: 400, wantUID: "uid-raw",
			wantPhrase: "request.object: cannot decode:"},
		{name: "unknown operation", body: withRequestField("operation", `"PATCH"`), wantStatus: 200, wantCode: 400, wantUID: "uid-raw",
			wantPhrase: `unknown operation "PATCH"`},
		{name: "8 MiB object", body: big, wantStatus: 413, wantCode: 413, wantPhrase: "exceeds the limit of 7340032 bytes"},
		{name: "8 MiB object without Content-Length", body: big, chunked: true, wantStatus: 413, wantCode: 413, wantPhrase: "exceeds the limit of 7340032 bytes"},
		{name: "empty body", body: nil, wantStatus: 400, wantCode: 400, wantPhrase: "empty request body"},
		{name: "whitespace body", body: []byte(" \n\t "), wantStatus: 400, wantCode: 400, wantPhrase: "empty request body"},
		{name: "GET instead of POST", method: http.MethodGet, wantStatus: 405, wantCode: 405, wantPhrase: "method GET not allowed"},
		{name: "Content-Type text/plain", contentType: "text/plain", body: mustJSON(valid), wantStatus: 415, wantCode: 415,
			wantPhrase: `content type "text/plain" not supported: send application/json`},
	}
}

func TestMalformedReviews(t *testing.T) {
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	for _, tt := range malformedCases() {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length: the client sends it chunked
				}
			}
			req, err := http.NewRequest(method, s.URL+"/validate", body)
			if err != nil {
				t.Fatal(err)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			a := do(t, s.Client, req)
			resp := a.review.Response
			if a.status != tt.wantStatus {
				t.Errorf("HTTP %d, want %d", a.status, tt.wantStatus)
			}
			if a.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", a.contentType)
			}
			if resp.Allowed {
				t.Errorf("allowed = true, want false")
			}
			if string(resp.UID) != tt.wantUID {
				t.Errorf("response.uid = %q, want %q", resp.UID, tt.wantUID)
			}
			if resp.Result == nil {
				t.Fatalf("no result in %s", a.raw)
			}
			if resp.Result.Code != tt.wantCode {
				t.Errorf("result.code = %d, want %d", resp.Result.Code, tt.wantCode)
			}
			if !strings.Contains(resp.Result.Message, tt.wantPhrase) {
				t.Errorf("result.message = %q, want it to contain %q", resp.Result.Message, tt.wantPhrase)
			}
			if resp.AuditAnnotations["decision"] != "error" {
				t.Errorf("auditAnnotations = %v, want decision=error", resp.AuditAnnotations)
			}
		})
	}

	// None of the above may have hurt the server: a valid request still gets its answer.
	a := post(t, s, "/validate", mustJSON(review("uid-after", privilegedDeployment())))
	if resp := a.review.Response; a.status != http.StatusOK || resp.UID != "uid-after" || resp.Allowed ||
		resp.Result == nil || resp.Result.Message != privilegedDenial {
		t.Errorf("after the malformed requests: HTTP %d, answer %s", a.status, a.raw)
	}
}
