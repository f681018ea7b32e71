package workbench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/workbench"
)

// testConfig trusts gcr.io/company and runs the library policies the tests look at; the others are off so that
// the messages stay few.
const testConfig = `policies:
  - name: trusted-registries
    parameters: {trusted_registries: [gcr.io/company]}
  - {name: require-attestation, mode: "off"}
  - {name: require-receipt, mode: "off"}
  - {name: resource-limits, mode: "off"}
  - {name: disallow-latest-tag, mode: "off"}
`

// minReplicas is a user's policy (Rego v1) beside the library.
const minReplicas = `# METADATA
# title: At least two replicas
# description: Deployments run at least two replicas, so that one node going away does not stop the service.
# custom:
#   name: min-replicas
#   severity: medium
#   mode: enforce
#   remediation: set spec.replicas to 2 or more
package company.min_replicas

import rego.v1

violation contains {"message": msg, "path": "spec.replicas"} if {
	input.request.kind.kind == "Deployment"
	r := object.get(input.resource.spec, "replicas", 1)
	r < 2
	msg := sprintf("%d replica(s) is too few", [r])
}
`

// deployment is a Deployment of image with n replicas, privileged or not.
func deployment(name string, n int, image string, privileged bool) map[string]any {
	c := map[string]any{"name": "app", "image": image}
	if privileged {
		c["securityContext"] = map[string]any{"privileged": true}
	}
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": "shop"},
		"spec": map[string]any{
			"replicas": float64(n),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{c}},
			},
		},
	}
}

// sources are the library and the user's policy, as `attest policy workbench --policy policies` reads them.
func sources(t testing.TB, _ string) []policies.Source {
	t.Helper()
	lib, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	return append(lib, policies.Source{Name: "policies/min-replicas.rego", Text: minReplicas})
}

func configFunc(t testing.TB) func(*policies.Engine) (*config.Config, error) {
	return func(e *policies.Engine) (*config.Config, error) { return config.Parse([]byte(testConfig), e) }
}

// recordedLog is a decision log written by the webhook's own handler with --log-inputs: the objects are sent as
// AdmissionReviews, in order, and decided by the library and min-replicas.
func recordedLog(t testing.TB, srcs []policies.Source, objs ...map[string]any) []byte {
	t.Helper()
	engine, err := policies.Compile(context.Background(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configFunc(t)(engine)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg },
		Verifier: func(c *config.Config) admission.ImageVerifier { return attestation.NewOfflineVerifier(c.Trust) }})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, LogInputs: true, Log: slog.New(slog.NewJSONHandler(&log, nil)), DecisionLog: &log})
	if err != nil {
		t.Fatal(err)
	}
	for i, obj := range objs {
		raw, _ := json.Marshal(obj)
		md := obj["metadata"].(map[string]any)
		review, _ := json.Marshal(map[string]any{
			"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"request": map[string]any{
				"uid": "uid-" + md["name"].(string), "kind": map[string]any{"group": "apps", "version": "v1", "kind": "Deployment"},
				"resource":  map[string]any{"group": "apps", "version": "v1", "resource": "deployments"},
				"namespace": md["namespace"], "name": md["name"], "operation": "CREATE",
				"userInfo": map[string]any{"username": "dev" + string(rune('a'+i))}, "object": json.RawMessage(raw),
			},
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(review)))
		if rec.Code != http.StatusOK {
			t.Fatalf("review %d: HTTP %d %s", i, rec.Code, rec.Body)
		}
	}
	if strings.Count(log.String(), "\n") != len(objs) {
		t.Fatalf("decision log has %d lines for %d reviews:\n%s", strings.Count(log.String(), "\n"), len(objs), log.String())
	}
	return log.Bytes()
}

// newWorkbench reads the log and builds the workbench as the command does.
func newWorkbench(t testing.TB, dir string, log []byte) *workbench.Workbench {
	t.Helper()
	srcs := sources(t, dir)
	records, _, err := workbench.ReadLog(bytes.NewReader(log), "decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	wb, err := workbench.New(context.Background(), workbench.Options{Sources: srcs, Config: configFunc(t), Records: records, SaveDir: dir, Selected: "min-replicas"})
	if err != nil {
		t.Fatal(err)
	}
	return wb
}
