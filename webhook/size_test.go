package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook"
)

// padTo appends JSON whitespace to body until it is exactly n bytes (the review it holds is unchanged).
func padTo(tb testing.TB, body []byte, n int) []byte {
	tb.Helper()
	if len(body) > n {
		tb.Fatalf("body is %d bytes, more than %d", len(body), n)
	}
	return append(body, bytes.Repeat([]byte(" "), n-len(body))...)
}

// TestRequestBodyLimit is issue 13's fourth finding: the limit is sized from the API server's own (an UPDATE
// carries two objects of up to 3 MiB each), so the largest legitimate review is read and decided, and a body
// over the limit is still refused with 413 before it is parsed, with or without Content-Length.
func TestRequestBodyLimit(t *testing.T) {
	if webhook.MaxRequestBytes != 7<<20 {
		t.Errorf("MaxRequestBytes = %d, want 2 × 3 MiB + 1 MiB = %d", webhook.MaxRequestBytes, 7<<20)
	}
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{})
	// Two objects of 3 MiB each as JSON, as an UPDATE at the API server's --max-request-bytes default carries them.
	obj := annotatedDeployment(3<<20 - 1024)
	if n := len(mustJSON(obj)); n > 3<<20 || n < 3<<20-2048 {
		t.Fatalf("object is %d bytes of JSON, want just under 3 MiB", n)
	}
	largeUpdate := mustJSON(review("uid-large", obj, operation(admissionv1.Update), oldObject(obj)))
	padded := func(n int) func(testing.TB) []byte {
		return func(tb testing.TB) []byte { return padTo(tb, largeUpdate, n) }
	}
	asIs := func(testing.TB) []byte { return largeUpdate }
	tests := []struct {
		name       string
		body       func(testing.TB) []byte
		chunked    bool
		wantStatus int
		wantUID    string
		wantPhrase string // of a refusal
	}{
		{name: "UPDATE with two 3 MiB objects", body: asIs, wantStatus: http.StatusOK, wantUID: "uid-large"},
		{name: "UPDATE with two 3 MiB objects, chunked", body: asIs, chunked: true, wantStatus: http.StatusOK, wantUID: "uid-large"},
		{name: "exactly the limit", body: padded(webhook.MaxRequestBytes), wantStatus: http.StatusOK, wantUID: "uid-large"},
		{name: "exactly the limit, chunked", body: padded(webhook.MaxRequestBytes), chunked: true, wantStatus: http.StatusOK, wantUID: "uid-large"},
		{name: "one byte over the limit", body: padded(webhook.MaxRequestBytes + 1), wantStatus: http.StatusRequestEntityTooLarge,
			wantPhrase: "request body of 7340033 bytes exceeds the limit of 7340032 bytes"},
		{name: "one byte over the limit, chunked", body: padded(webhook.MaxRequestBytes + 1), chunked: true,
			wantStatus: http.StatusRequestEntityTooLarge, wantPhrase: "request body exceeds the limit of 7340032 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tt.body(t))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: the client sends it chunked
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/validate", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			a := do(t, s.Client, req)
			resp := a.review.Response
			if a.status != tt.wantStatus || string(resp.UID) != tt.wantUID {
				t.Fatalf("HTTP %d, uid %q; want %d and %q: %.300s", a.status, resp.UID, tt.wantStatus, tt.wantUID, a.raw)
			}
			if tt.wantStatus == http.StatusOK {
				if !resp.Allowed {
					t.Fatalf("the compliant UPDATE was refused: %.300s", a.raw)
				}
				return
			}
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusRequestEntityTooLarge || !strings.Contains(resp.Result.Message, tt.wantPhrase) {
				t.Errorf("result = %+v, want 413 containing %q", resp.Result, tt.wantPhrase)
			}
		})
	}
}
