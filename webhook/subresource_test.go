package webhook_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook"
)

// syncBuffer is a log sink the server's goroutines may write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// line waits for the next whole line (the decision log is written just after the answer is sent) and returns it.
func (b *syncBuffer) line(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.mu.Lock()
		if i := bytes.IndexByte(b.buf.Bytes(), '\n'); i >= 0 {
			line := string(b.buf.Next(i + 1))
			b.mu.Unlock()
			return line
		}
		b.mu.Unlock()
	}
	t.Fatal("no decision log line within 10s")
	return ""
}

// withStatus returns a copy of obj with a status, as the kubelet or a controller writes it.
func withStatus(obj map[string]any, status map[string]any) map[string]any {
	out := withTypeMeta(obj, obj["apiVersion"], obj["kind"])
	out["status"] = status
	return out
}

// withLabel returns a copy of obj whose metadata carries one more label.
func withLabel(obj map[string]any, key, value string) map[string]any {
	out := withTypeMeta(obj, obj["apiVersion"], obj["kind"])
	md := map[string]any{}
	for k, v := range obj["metadata"].(map[string]any) {
		md[k] = v
	}
	md["labels"] = map[string]any{key: value}
	out["metadata"] = md
	return out
}

// TestSubresourcesThroughTheHandler is issue 13's third finding: writes through a subresource that cannot
// change what policies judge are allowed without evaluation (and say why in the audit annotation and the decision
// log), so a Pod whose spec violates a policy still gets its status reported; every other subresource is judged.
func TestSubresourcesThroughTheHandler(t *testing.T) {
	logs := &syncBuffer{}
	s := serveDecider(t, newEvaluator(t, trustedConfig, ""), webhook.HandlerOptions{Log: slog.New(slog.NewJSONHandler(logs, nil)), DecisionLog: logs})
	privilegedPod := pod("web", withContainer(ctr("app", trustedImage, privileged())))
	running := map[string]any{"phase": "Running", "conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}
	const (
		statusReason   = "a status write cannot change the spec, and this one changes no label, annotation or owner reference"
		evictionReason = "an eviction deletes the Pod, and deletions are not judged"
		podDenial      = "[no-privileged] spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
	)
	eviction := map[string]any{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": map[string]any{"name": "web", "namespace": "shop"}}
	binding := map[string]any{"apiVersion": "v1", "kind": "Binding", "metadata": map[string]any{"name": "web", "namespace": "shop"},
		"target": map[string]any{"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
	scale := map[string]any{"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": map[string]any{"name": "web", "namespace": "shop"},
		"spec": map[string]any{"replicas": 1}}
	tests := []struct {
		name        string
		review      admissionv1.AdmissionReview
		wantAllowed bool
		wantMessage string // the denial
		wantReason  string // not-evaluated; "" means the policies ran
	}{
		{
			name: "kubelet reports the status of a privileged Pod",
			review: review("uid-status", withStatus(privilegedPod, running), operation(admissionv1.Update), subResource("status"),
				oldObject(privilegedPod), user("system:node:node-1", "system:nodes")),
			wantAllowed: true, wantReason: statusReason,
		},
		{
			name: "controller reports the status of a privileged Deployment",
			review: review("uid-deploy-status", withStatus(privilegedDeployment(), map[string]any{"readyReplicas": 2}), operation(admissionv1.Update),
				subResource("status"), oldObject(privilegedDeployment()), user("system:serviceaccount:kube-system:deployment-controller")),
			wantAllowed: true, wantReason: statusReason,
		},
		{
			name: "a status write that changes a label is judged",
			review: review("uid-status-label", withLabel(withStatus(privilegedPod, running), "tier", "web"), operation(admissionv1.Update),
				subResource("status"), oldObject(privilegedPod)),
			wantMessage: podDenial,
		},
		{
			name:        "a status write without the old object is judged",
			review:      review("uid-status-no-old", withStatus(privilegedPod, running), operation(admissionv1.Update), subResource("status")),
			wantMessage: podDenial,
		},
		{
			name:        "eviction of a privileged Pod",
			review:      review("uid-evict", eviction, subResource("eviction"), user("system:serviceaccount:kube-system:node-drainer")),
			wantAllowed: true, wantReason: evictionReason,
		},
		{
			name: "ephemeral containers are still judged",
			review: review("uid-ephemeral", pod("web", withContainer(ctr("app", trustedImage)), withEphemeral(ctr("dbg", trustedImage, privileged()))),
				operation(admissionv1.Update), subResource("ephemeralcontainers"), oldObject(pod("web", withContainer(ctr("app", trustedImage))))),
			wantMessage: "[no-privileged] spec.ephemeralContainers[0] (dbg): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException",
		},
		{
			// resize changes container resources, which policies judge: the Pod is judged whole.
			name:        "resize is judged",
			review:      review("uid-resize", privilegedPod, operation(admissionv1.Update), subResource("resize"), oldObject(privilegedPod)),
			wantMessage: podDenial,
		},
		{
			// scale changes spec.replicas: it is evaluated (as the Scale object it carries).
			name:        "scale is judged",
			review:      review("uid-scale", scale, operation(admissionv1.Update), subResource("scale"), oldObject(scale)),
			wantAllowed: true,
		},
		{
			// binding sets spec.nodeName and copies its annotations onto the Pod.
			name:        "binding is judged",
			review:      review("uid-binding", binding, subResource("binding"), user("system:kube-scheduler")),
			wantAllowed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, s, "/validate", mustJSON(tt.review))
			resp := a.review.Response
			if a.status != http.StatusOK || resp.UID != tt.review.Request.UID {
				t.Fatalf("HTTP %d, uid %q; want 200 and %q:\n%s", a.status, resp.UID, tt.review.Request.UID, a.raw)
			}
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v:\n%s", resp.Allowed, tt.wantAllowed, a.raw)
			}
			if !tt.wantAllowed && (resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Message != tt.wantMessage) {
				t.Errorf("result = %+v\nwant 403 %q", resp.Result, tt.wantMessage)
			}
			if got := resp.AuditAnnotations["not-evaluated"]; got != tt.wantReason {
				t.Errorf("auditAnnotations[not-evaluated] = %q, want %q (all: %v)", got, tt.wantReason, resp.AuditAnnotations)
			}

			var line struct {
				SubResource  string            `json:"subresource"`
				Decision     string            `json:"decision"`
				NotEvaluated string            `json:"not_evaluated"`
				Policies     []json.RawMessage `json:"policies"`
			}
			out := logs.line(t)
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &line); err != nil {
				t.Fatalf("decision log is not one JSON line: %v\n%s", err, out)
			}
			if line.SubResource != tt.review.Request.SubResource || line.NotEvaluated != tt.wantReason {
				t.Errorf("decision log subresource %q not_evaluated %q, want %q %q:\n%s", line.SubResource, line.NotEvaluated,
					tt.review.Request.SubResource, tt.wantReason, out)
			}
			if evaluated := len(line.Policies) > 0; evaluated != (tt.wantReason == "") {
				t.Errorf("decision log lists %d policy results; want them exactly when the request is evaluated:\n%s", len(line.Policies), out)
			}
		})
	}
}
