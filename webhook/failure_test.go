package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

// releasing is a blocking decider with the channel that releases it.
type releasing struct {
	*webhooktest.Blocking
	release chan struct{}
}

func TestFailurePolicy(t *testing.T) {
	const budget = 50 * time.Millisecond
	// The blocking decider is released before its server shuts down (cleanups run last first): an admission past
	// its budget is answered at once, but its pipeline holds the request's goroutine until it ends.
	blocking := func(t *testing.T) webhook.Decider {
		release := make(chan struct{})
		return releasing{&webhooktest.Blocking{Release: release}, release}
	}
	panicking := func(value any) func(*testing.T) webhook.Decider {
		return func(*testing.T) webhook.Decider { return webhooktest.Panicking{Value: value} }
	}
	tests := []struct {
		name    string
		decider func(t *testing.T) webhook.Decider
		policy  webhook.FailurePolicy
		// wantAllowed=false expects result.code 500 and every phrase in the message; true expects one warning
		// holding every phrase.
		wantAllowed bool
		wantPhrases []string
	}{
		{
			name: "decider past its budget, Fail", decider: blocking, policy: webhook.Fail,
			wantPhrases: []string{"did not reach a decision within 50ms", "refuses it (failurePolicy Fail)"},
		},
		{
			name: "decider past its budget, default policy is Fail", decider: blocking, policy: "",
			wantPhrases: []string{"did not reach a decision within 50ms", "refuses it (failurePolicy Fail)"},
		},
		{
			name: "decider past its budget, Ignore", decider: blocking, policy: webhook.Ignore, wantAllowed: true,
			wantPhrases: []string{"admitted it unchecked (failurePolicy Ignore)", "did not reach a decision within 50ms"},
		},
		{
			name: "panicking decider, Fail", decider: panicking("policy engine exploded"), policy: webhook.Fail,
			wantPhrases: []string{"internal error: policy engine exploded", "refuses it (failurePolicy Fail)"},
		},
		{
			name: "decider panicking with an error, Fail", decider: panicking(errors.New("nil map")), policy: webhook.Fail,
			wantPhrases: []string{"internal error: nil map"},
		},
		{
			// The API server drops warnings with control characters: the panic text is sanitised, not lost.
			name: "panicking decider with a multi-line message, Ignore", decider: panicking("line one\nline two"), policy: webhook.Ignore, wantAllowed: true,
			wantPhrases: []string{"admitted it unchecked (failurePolicy Ignore)", "internal error: line one line two"},
		},
		{
			name: "panicking decider, Ignore", decider: panicking("policy engine exploded"), policy: webhook.Ignore, wantAllowed: true,
			wantPhrases: []string{"admitted it unchecked (failurePolicy Ignore)", "internal error: policy engine exploded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decider := tt.decider(t)
			s := serveDecider(t, decider, webhook.HandlerOptions{Budget: budget, FailurePolicy: tt.policy})
			if r, ok := decider.(releasing); ok {
				t.Cleanup(func() { close(r.release) })
			}
			// The server must answer every request alike: the failure of one leaves it serving the next.
			for _, uid := range []string{"uid-first", "uid-next"} {
				a := post(t, s, "/validate", mustJSON(review(uid, compliantDeployment())))
				resp := a.review.Response
				if a.status != http.StatusOK {
					t.Fatalf("%s: HTTP %d, want 200:\n%s", uid, a.status, a.raw)
				}
				if string(resp.UID) != uid {
					t.Errorf("%s: response.uid = %q", uid, resp.UID)
				}
				if resp.Allowed != tt.wantAllowed {
					t.Fatalf("%s: allowed = %v, want %v:\n%s", uid, resp.Allowed, tt.wantAllowed, a.raw)
				}
				if resp.AuditAnnotations["decision"] != "error" {
					t.Errorf("%s: auditAnnotations = %v, want decision=error", uid, resp.AuditAnnotations)
				}
				text := ""
				if tt.wantAllowed {
					if resp.Result != nil || len(resp.Warnings) != 1 {
						t.Fatalf("%s: want no result and one warning:\n%s", uid, a.raw)
					}
					text = resp.Warnings[0]
				} else {
					if resp.Result == nil || resp.Result.Code != http.StatusInternalServerError || resp.Result.Reason != "InternalError" {
						t.Fatalf("%s: result = %+v, want code 500, reason InternalError", uid, resp.Result)
					}
					text = resp.Result.Message
				}
				for _, p := range tt.wantPhrases {
					if !strings.Contains(text, p) {
						t.Errorf("%s: %q does not contain %q", uid, text, p)
					}
				}
			}
		})
	}
}

func TestNewHandlerValidatesOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    webhook.HandlerOptions
		wantErr string
	}{
		{name: "validating handler without decider", opts: webhook.HandlerOptions{}, wantErr: "a decider is required"},
		{name: "unknown failure policy", opts: webhook.HandlerOptions{Decider: webhooktest.Panicking{}, FailurePolicy: "Retry"},
			wantErr: `failure policy must be Fail or Ignore, got "Retry"`},
		{name: "mutating handler without decider", opts: webhook.HandlerOptions{Mutating: true}, wantErr: "a decider is required"},
		{name: "Ignore", opts: webhook.HandlerOptions{Decider: webhooktest.Panicking{}, FailurePolicy: webhook.Ignore}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.NewHandler(tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("NewHandler: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("NewHandler error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestLateAnswerPerProtocol: past its budget an admission is answered at once over either protocol. Over
// HTTP/1.1 the pipeline still holds the connection, so the answer closes it and the next request dials anew; over
// HTTP/2 the connection carries the next request, and the answer must not wait for the pipeline to end.
func TestLateAnswerPerProtocol(t *testing.T) {
	tests := []struct {
		name      string
		http2     bool
		wantProto int
		// wantReused says whether the second request may use the first one's connection.
		wantReused bool
	}{
		{name: "HTTP/1.1", wantProto: 1},
		{name: "HTTP/2", http2: true, wantProto: 2, wantReused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			decider := &webhooktest.Blocking{Release: release}
			validate := newHandler(t, webhook.HandlerOptions{Decider: decider, Budget: 50 * time.Millisecond})
			mutate := newHandler(t, webhook.HandlerOptions{Decider: decider, Mutating: true})
			s := webhooktest.Serve(t, webhook.ServerOptions{Validate: validate, Mutate: mutate, EnableHTTP2: tt.http2})
			t.Cleanup(func() { close(release) })
			// A client timeout far below the test's: an answer held until the pipeline ends fails here, not by hanging.
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: s.Pool, MinVersion: tls.VersionTLS12},
				ForceAttemptHTTP2: tt.http2,
			}}
			t.Cleanup(client.CloseIdleConnections)
			for i, uid := range []string{"uid-first", "uid-next"} {
				reused := false
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused },
				})
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/validate",
					bytes.NewReader(mustJSON(review(uid, compliantDeployment()))))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", uid, err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: read answer: %v", uid, err)
				}
				if resp.ProtoMajor != tt.wantProto {
					t.Fatalf("%s: answered over %s, want HTTP/%d", uid, resp.Proto, tt.wantProto)
				}
				if !strings.Contains(string(body), "did not reach a decision within 50ms") {
					t.Errorf("%s: answer is not the late answer:\n%s", uid, body)
				}
				if wantClose := !tt.http2; resp.Close != wantClose {
					t.Errorf("%s: connection closed after the answer = %v, want %v", uid, resp.Close, wantClose)
				}
				if i == 1 && reused != tt.wantReused {
					t.Errorf("%s: sent on the first request's connection = %v, want %v", uid, reused, tt.wantReused)
				}
			}
		})
	}
}
