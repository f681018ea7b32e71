package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook"
)

// logLine is the decision log's line as a reader of the log sees it.
type logLine struct {
	Time        string      `json:"time"`
	Level       string      `json:"level"`
	Msg         string      `json:"msg"`
	UID         string      `json:"uid"`
	User        string      `json:"user"`
	Operation   string      `json:"operation"`
	Kind        string      `json:"kind"`
	SubResource string      `json:"subresource"`
	Namespace   string      `json:"namespace"`
	Name        string      `json:"name"`
	DryRun      bool        `json:"dry_run"`
	Decision    string      `json:"decision"`
	Code        int         `json:"code"`
	Message     string      `json:"message"`
	Policies    []policyLog `json:"policies"`
	DurationMS  *float64    `json:"duration_ms"`
}

type policyLog struct {
	Policy     string   `json:"policy"`
	Mode       string   `json:"mode"`
	Result     string   `json:"result"`
	Messages   []string `json:"messages"`
	DurationUS *int64   `json:"duration_us"`
	Digest     string   `json:"digest"`
}

// logTo is options whose decision log (and log) is written to buf.
func logTo(buf *bytes.Buffer, o webhook.HandlerOptions) webhook.HandlerOptions {
	o.Log, o.DecisionLog = slog.New(slog.NewJSONHandler(buf, nil)), buf
	return o
}

func TestDecisionLog(t *testing.T) {
	var buf bytes.Buffer
	h := newHandler(t, logTo(&buf, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, "")}))
	passed := func(policy string) policyLog { return policyLog{Policy: policy, Mode: "enforce", Result: "passed"} }
	debugPod := pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("debugger", trustedImage, privileged())))
	tests := []struct {
		name   string
		review admissionv1.AdmissionReview
		want   logLine
	}{
		{
			name:   "denied create",
			review: review("uid-log-1", privilegedDeployment()),
			want: logLine{Level: "INFO", Msg: "admission", UID: "uid-log-1", User: "alice@example.com", Operation: "CREATE",
				Kind: "Deployment", Namespace: "shop", Name: "web", Decision: "denied", Code: 403, Message: privilegedDenial,
				Policies: []policyLog{
					{Policy: "no-privileged", Mode: "enforce", Result: "failed", Messages: []string{privilegedDenial}},
					passed("trusted-registries"),
				}},
		},
		{
			name:   "allowed dry run",
			review: review("uid-log-2", compliantDeployment(), dryRun(), user("bob@example.com")),
			want: logLine{Level: "INFO", Msg: "admission", UID: "uid-log-2", User: "bob@example.com", Operation: "CREATE",
				Kind: "Deployment", Namespace: "shop", Name: "web", DryRun: true, Decision: "allowed", Code: 200,
				Policies: []policyLog{passed("no-privileged"), passed("trusted-registries")}},
		},
		{
			name: "denied ephemeral container",
			review: review("uid-log-3", debugPod, operation(admissionv1.Update), subResource("ephemeralcontainers"),
				oldObject(pod("web", withContainer(ctr("app", trustedImage)))), user("oncall@example.com", "sre")),
			want: logLine{Level: "INFO", Msg: "admission", UID: "uid-log-3", User: "oncall@example.com", Operation: "UPDATE",
				Kind: "Pod", SubResource: "ephemeralcontainers", Namespace: "shop", Name: "web", Decision: "denied", Code: 403,
				Message: "[no-privileged] spec.ephemeralContainers[0] (debugger): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException",
				Policies: []policyLog{
					{Policy: "no-privileged", Mode: "enforce", Result: "failed", Messages: []string{
						"[no-privileged] spec.ephemeralContainers[0] (debugger): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"}},
					passed("trusted-registries"),
				}},
		},
		{
			name:   "delete evaluates no policy",
			review: review("uid-log-4", privilegedDeployment(), operation(admissionv1.Delete)),
			want: logLine{Level: "INFO", Msg: "admission", UID: "uid-log-4", User: "alice@example.com", Operation: "DELETE",
				Kind: "Deployment", Namespace: "shop", Name: "web", Decision: "allowed", Code: 200, Policies: []policyLog{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(mustJSON(tt.review)))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d:\n%s", rec.Code, rec.Body)
			}
			out := buf.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("want exactly one log line per admission, got:\n%s", out)
			}
			var got logLine
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("log line is not the decision log's JSON: %v\n%s", err, out)
			}
			if got.DurationMS == nil {
				t.Errorf("log line has no duration_ms: %s", out)
			}
			if got.Time == "" {
				t.Errorf("log line has no time: %s", out)
			}
			got.DurationMS, got.Time = nil, ""
			for i, p := range got.Policies {
				if p.DurationUS == nil {
					t.Errorf("policies[%d] has no duration_us: %s", i, out)
				}
				if len(p.Digest) != 16 {
					t.Errorf("policies[%d] has no source digest: %s", i, out)
				}
				got.Policies[i].DurationUS, got.Policies[i].Digest = nil, ""
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decision log line\n got %+v\nwant %+v\n%s", got, tt.want, out)
			}
		})
	}
}

// TestDecisionLogRecordsRedactedInputs: with --log-inputs each line carries the input replay needs, without
// Secret-like values, and an input over the cap is marked truncated rather than logged in part.
func TestDecisionLogRecordsRedactedInputs(t *testing.T) {
	var buf bytes.Buffer
	h := newHandler(t, logTo(&buf, webhook.HandlerOptions{Decider: newEvaluator(t, trustedConfig, ""), LogInputs: true, MaxLoggedInput: 4096}))
	obj := pod("web", withContainer(ctr("app", trustedImage)))
	spec := obj["spec"].(map[string]any)
	c := spec["containers"].([]any)[0].(map[string]any)
	c["env"] = []any{map[string]any{"name": "DB_PASSWORD", "value": "hunter2"}, map[string]any{"name": "LOG_LEVEL", "value": "debug"}}
	post := func(o map[string]any) map[string]any {
		buf.Reset()
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(mustJSON(review("uid-in", o))))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%v: %s", err, buf.String())
		}
		in, _ := line["input"].(map[string]any)
		if in == nil {
			t.Fatalf("no input recorded: %s", buf.String())
		}
		return in
	}
	in := post(obj)
	text := fmt.Sprint(in)
	if strings.Contains(text, "hunter2") || !strings.Contains(text, "<redacted>") || !strings.Contains(text, "debug") {
		t.Fatalf("recorded input not redacted as expected: %s", text)
	}
	if r, _ := in["request"].(map[string]any); r == nil || r["UID"] != "uid-in" {
		t.Fatalf("recorded request: %v", in["request"])
	}
	big := pod("web", withContainer(ctr("app", trustedImage)))
	big["metadata"].(map[string]any)["annotations"] = map[string]any{"blob": strings.Repeat("x", 8192)}
	if in := post(big); in["object"] != nil || in["truncated_bytes"] == nil {
		t.Fatalf("an input over the cap was logged: %v", in)
	}
}

// heldLog is a log (a slog handler and the decision log's writer) whose writes wait until released, as a log pipe
// that is full does.
type heldLog struct {
	entered chan struct{}
	release chan struct{}
	lines   chan string
}

func (h heldLog) Enabled(context.Context, slog.Level) bool { return true }
func (h heldLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h heldLog) WithGroup(string) slog.Handler            { return h }
func (h heldLog) Handle(_ context.Context, r slog.Record) error {
	_, err := h.Write([]byte(r.Message))
	return err
}

func (h heldLog) Write(p []byte) (int, error) {
	h.entered <- struct{}{}
	<-h.release
	h.lines <- string(p)
	return len(p), nil
}

// TestAnswerSentBeforeTheDecisionLog: the API server has its answer (the whole body, by its Content-Length) before
// the decision log is written, so a slow or stuck log never delays or times out an admission; the line is still
// written afterwards.
func TestAnswerSentBeforeTheDecisionLog(t *testing.T) {
	held := heldLog{entered: make(chan struct{}, 1), release: make(chan struct{}), lines: make(chan string, 1)}
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{Log: slog.New(held), DecisionLog: held})
	type reply struct {
		body []byte
		err  error
	}
	done := make(chan reply, 1)
	go func() {
		resp, err := s.Client.Post(s.URL+"/validate", "application/json", bytes.NewReader(mustJSON(review("uid-held", compliantDeployment()))))
		if err != nil {
			done <- reply{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- reply{body, err}
	}()
	<-held.entered // the handler is writing the decision log, which waits
	select {
	case r := <-done:
		var got admissionv1.AdmissionReview
		if r.err != nil {
			t.Fatalf("POST /validate: %v", r.err)
		}
		if err := json.Unmarshal(r.body, &got); err != nil || got.Response == nil || !got.Response.Allowed || got.Response.UID != "uid-held" {
			t.Errorf("answer %s (%v), want uid-held allowed", r.body, err)
		}
	case <-time.After(10 * time.Second):
		close(held.release)
		t.Fatal("no answer while the decision log was held")
	}
	close(held.release)
	if line := <-held.lines; !strings.Contains(line, `"msg":"admission"`) {
		t.Errorf("the decision log line has no message: %q", line)
	}
}
