package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

// benchHTTPS posts the three-container Deployment's review to /validate of a TLS server with validate behind
// it, from GOMAXPROCS goroutines sharing one keep-alive client.
func benchHTTPS(b *testing.B, validate http.Handler) {
	s := webhooktest.Serve(b, webhook.ServerOptions{Validate: validate, Mutate: validate})
	body := mustJSON(review("uid-bench", threeContainerDeployment()))
	url := s.URL + "/validate"
	send := func() (int, []byte, error) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, err
	}
	// The answer is checked once, outside the measurement.
	status, out, err := send()
	if err != nil {
		b.Fatal(err)
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &rv); err != nil || status != http.StatusOK || rv.Response == nil || !rv.Response.Allowed {
		b.Fatalf("HTTP %d %s (%v): want an allowed AdmissionReview", status, out, err)
	}

	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			status, _, err := send()
			if err != nil {
				b.Error(err)
				return
			}
			if status != http.StatusOK {
				b.Errorf("HTTP %d", status)
				return
			}
		}
	})
}

// BenchmarkValidateHTTPS is the hot path: TLS, decoding, the full embedded library and the answer.
func BenchmarkValidateHTTPS(b *testing.B) {
	_, metrics := newRegistry(b)
	benchHTTPS(b, newHandler(b, webhook.HandlerOptions{Decider: newEvaluator(b, trustedConfig, ""), Metrics: metrics}))
}

// noopAnswer is a fixed allowed AdmissionReview.
var noopAnswer = mustJSON(admissionv1.AdmissionReview{
	TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
	Response: &admissionv1.AdmissionResponse{UID: "uid-bench", Allowed: true},
})

// BenchmarkNoopHTTPS is the same exchange with a handler that decodes nothing: the difference to
// BenchmarkValidateHTTPS is what reading the review and evaluating policies cost.
func BenchmarkNoopHTTPS(b *testing.B) {
	benchHTTPS(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(noopAnswer)
	}))
}
