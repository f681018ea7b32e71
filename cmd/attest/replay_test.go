//go:build !lean

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/webhook"
)

// recordLog serves reviews through the real webhook handler with --log-inputs and returns the decision log.
func recordLog(t *testing.T, configYAML string, objects ...string) string {
	t.Helper()
	engine, err := compileLibrary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(configYAML), engine)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, Log: slog.New(slog.NewJSONHandler(&log, nil)), DecisionLog: &log, LogInputs: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, obj := range objects {
		review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u` + string(rune('0'+i)) +
			`","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","name":"p","userInfo":{"username":"alice"},"object":` + obj + `}}`
		req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(review))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(path, log.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const permissive = `policies:
  - name: trusted-registries
    parameters: {trusted_registries: [gcr.io/company, quay.io/someone]}
  - {name: require-attestation, mode: "off"}
  - {name: resource-limits, mode: "off"}
  - {name: disallow-latest-tag, mode: "off"}
`

func TestReplayShowsWhatAStricterConfigWouldDeny(t *testing.T) {
	log := recordLog(t, permissive,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"trusted","namespace":"shop"},"spec":{"containers":[{"name":"a","image":"gcr.io/company/a:1"}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"quay","namespace":"shop"},"spec":{"containers":[{"name":"a","image":"quay.io/someone/a:1"}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root","namespace":"shop"},"spec":{"containers":[{"name":"a","image":"gcr.io/company/a:1","securityContext":{"privileged":true}}]}}`,
	)
	stricter := filepath.Join(t.TempDir(), "stricter.yaml")
	if err := os.WriteFile(stricter, []byte(strings.Replace(permissive, ", quay.io/someone", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "replay", "--log", log, "--config", stricter, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (something newly denied); stderr %s", code, errOut)
	}
	var r replayReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Replayed != 3 || r.Unchanged != 2 || len(r.NewlyDenied) != 1 || len(r.NewlyAllowed) != 0 {
		t.Fatalf("report %+v", r)
	}
	got := r.NewlyDenied[0]
	if got.UID != "u1" || got.Before.Decision != "allowed" || got.After.Decision != "denied" || !strings.HasPrefix(got.After.Message, `[trusted-registries] spec.containers[0] (a): image "quay.io/someone/a:1"`) {
		t.Fatalf("newly denied: %+v", got)
	}
	// Against the same configuration nothing changes.
	same := filepath.Join(t.TempDir(), "same.yaml")
	if err := os.WriteFile(same, []byte(permissive), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code = attest(t, "", "policy", "replay", "--log", log, "--config", same)
	if code != 0 || !strings.Contains(out, "replayed 3 admissions") || !strings.Contains(out, "newly denied: 0") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestReplayErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--log is required"},
		{[]string{"--log", filepath.Join(t.TempDir(), "missing.jsonl")}, "no such file"},
		{[]string{"--log", bad}, "bad.jsonl:1: not a decision log line"},
	} {
		_, errOut, code := attest(t, "", append([]string{"policy", "replay"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
}
