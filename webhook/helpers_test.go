package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
	"github.com/continuums/attest/webhook/webhooktest"
)

// trustedImage is under the registry every test configuration trusts, so only the policies a test means to
// trigger fire.
const (
	trustedImage  = "registry.example.com/team/app:1.2.3"
	trustedConfig = `
policies:
- name: trusted-registries
  parameters:
    trusted_registries: [registry.example.com/team]
`
	// auditConfig additionally downgrades no-privileged with the policy documents' word.
	auditConfig = trustedConfig + `- name: no-privileged
  enforcement: warn
`
	// privilegedDenial is the denial for a privileged first container named app in a Deployment, word for word.
	privilegedDenial = "[no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
)

// compiledLibrary is the foundation policies of the embedded library, compiled once per test binary (the engine is
// immutable).
var compiledLibrary = sync.OnceValues(func() (*policies.Engine, error) {
	srcs, err := admissiontest.LibrarySources(admissiontest.Foundation...)
	if err != nil {
		return nil, err
	}
	return policies.Compile(context.Background(), srcs)
})

// newEvaluator builds the real pipeline over the embedded library with the given policies.yaml.
func newEvaluator(tb testing.TB, configYAML string, mode policies.Mode) *admission.Evaluator {
	tb.Helper()
	engine, err := compiledLibrary()
	if err != nil {
		tb.Fatalf("compile the embedded library: %v", err)
	}
	cfg, err := config.Parse([]byte(configYAML), engine)
	if err != nil {
		tb.Fatalf("parse config: %v", err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }, Mode: mode})
	if err != nil {
		tb.Fatal(err)
	}
	return eval
}

func newHandler(tb testing.TB, o webhook.HandlerOptions) *webhook.Handler {
	tb.Helper()
	h, err := webhook.NewHandler(o)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// serveDecider runs a TLS server whose /validate uses decider and whose /mutate is the mutating handler, as
// cmd/attest wires them.
func serveDecider(tb testing.TB, decider webhook.Decider, o webhook.HandlerOptions) *webhooktest.Served {
	tb.Helper()
	o.Decider = decider
	validate := newHandler(tb, o)
	mutate := newHandler(tb, webhook.HandlerOptions{Mutating: true, Decider: decider, Metrics: o.Metrics, Log: o.Log})
	return webhooktest.Serve(tb, webhook.ServerOptions{Validate: validate, Mutate: mutate})
}

// --- object builders ---

type ctrOpt func(c map[string]any)

func ctr(name, image string, opts ...ctrOpt) map[string]any {
	c := map[string]any{"name": name, "image": image}
	for _, o := range opts {
		o(c)
	}
	return c
}

func privileged() ctrOpt {
	return func(c map[string]any) { c["securityContext"] = map[string]any{"privileged": true} }
}

type specOpt func(spec map[string]any)

func appendTo(field string, c map[string]any) specOpt {
	return func(spec map[string]any) {
		list, _ := spec[field].([]any)
		spec[field] = append(list, c)
	}
}

func withContainer(c map[string]any) specOpt { return appendTo("containers", c) }
func withInit(c map[string]any) specOpt      { return appendTo("initContainers", c) }
func withEphemeral(c map[string]any) specOpt { return appendTo("ephemeralContainers", c) }

func podSpec(opts ...specOpt) map[string]any {
	spec := map[string]any{}
	for _, o := range opts {
		o(spec)
	}
	return spec
}

// deployment builds an apps/v1 Deployment in namespace shop.
func deployment(name string, opts ...specOpt) map[string]any {
	labels := map[string]any{"app": name}
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name, "namespace": "shop"},
		"spec": map[string]any{
			"replicas": 2,
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec":     podSpec(opts...),
			},
		},
	}
}

// pod builds a v1 Pod in namespace shop.
func pod(name string, opts ...specOpt) map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": "shop"},
		"spec":       podSpec(opts...),
	}
}

func privilegedDeployment() map[string]any {
	return deployment("web", withContainer(ctr("app", trustedImage, privileged())))
}

func compliantDeployment() map[string]any {
	return deployment("web", withContainer(ctr("app", trustedImage)))
}

// threeContainerDeployment is the benchmark's workload: an init container and two containers, all compliant.
func threeContainerDeployment() map[string]any {
	return deployment("shop",
		withInit(ctr("migrate", "registry.example.com/team/migrate:4.0.1")),
		withContainer(ctr("app", trustedImage)),
		withContainer(ctr("proxy", "registry.example.com/team/proxy:2.7")),
	)
}

// --- review builders ---

type reqOpt func(r *admissionv1.AdmissionRequest)

func dryRun() reqOpt { return func(r *admissionv1.AdmissionRequest) { t := true; r.DryRun = &t } }

func operation(op admissionv1.Operation) reqOpt {
	return func(r *admissionv1.AdmissionRequest) { r.Operation = op }
}

func subResource(s string) reqOpt { return func(r *admissionv1.AdmissionRequest) { r.SubResource = s } }

func oldObject(obj map[string]any) reqOpt {
	return func(r *admissionv1.AdmissionRequest) { r.OldObject = runtime.RawExtension{Raw: mustJSON(obj)} }
}

func user(name string, groups ...string) reqOpt {
	return func(r *admissionv1.AdmissionRequest) {
		r.UserInfo = authenticationv1.UserInfo{Username: name, Groups: groups}
	}
}

// review builds an admission.k8s.io/v1 AdmissionReview that CREATEs obj, as the API server sends it.
func review(uid string, obj map[string]any, opts ...reqOpt) admissionv1.AdmissionReview {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv := groupVersion(apiVersion)
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	resource := strings.ToLower(kind) + "s"
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID(uid),
		Kind:      metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: kind},
		Resource:  metav1.GroupVersionResource{Group: gv.Group, Version: gv.Version, Resource: resource},
		Name:      name,
		Namespace: ns,
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: "alice@example.com", Groups: []string{"developers", "system:authenticated"}},
		Object:    runtime.RawExtension{Raw: mustJSON(obj)},
	}
	for _, o := range opts {
		o(req)
	}
	return admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	}
}

func groupVersion(apiVersion string) metav1.GroupVersion {
	gv := metav1.GroupVersion{Version: apiVersion}
	if i := strings.LastIndexByte(apiVersion, '/'); i >= 0 {
		gv.Group, gv.Version = apiVersion[:i], apiVersion[i+1:]
	}
	return gv
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// --- HTTP ---

// answer is one HTTP exchange with the webhook: the status, the Content-Type and the decoded review.
type answer struct {
	status      int
	contentType string
	review      admissionv1.AdmissionReview
	raw         []byte
}

// do sends req and decodes the answer as an AdmissionReview, failing the test if it is not one.
func do(tb testing.TB, client *http.Client, req *http.Request) answer {
	tb.Helper()
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: raw}
	if err := json.Unmarshal(raw, &a.review); err != nil {
		tb.Fatalf("answer (HTTP %d) is not JSON: %v\n%s", resp.StatusCode, err, raw)
	}
	if a.review.APIVersion != "admission.k8s.io/v1" || a.review.Kind != "AdmissionReview" || a.review.Response == nil {
		tb.Fatalf("answer (HTTP %d) is not an admission.k8s.io/v1 AdmissionReview with a response:\n%s", resp.StatusCode, raw)
	}
	return a
}

// post sends an AdmissionReview (or any body) to path as application/json.
func post(tb testing.TB, s *webhooktest.Served, path string, body []byte) answer {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(tb, s.Client, req)
}

// get fetches url with s's client (which speaks HTTPS to the webhook port and HTTP to the others) and returns
// its status and body.
func get(tb testing.TB, s *webhooktest.Served, url string) (int, string) {
	tb.Helper()
	resp, err := s.Client.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// newRegistry is a fresh registry with the Go runtime collector, as cmd/attest registers it.
func newRegistry(tb testing.TB) (*prometheus.Registry, *webhook.Metrics) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	m, err := webhook.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	return reg, m
}

// rawJSON is JSON text placed verbatim into a document built from maps.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
