package chart

import (
	"encoding/json"
	"strings"
	"testing"
)

// renderArgs is `helm template` with raw extra arguments (--set-json, -f) and the release name given.
func renderArgs(t *testing.T, helm, release string, args ...string) map[string]map[string]any {
	t.Helper()
	all := append([]string{"template", release, repo("charts", "attest"), "--namespace", "platform"}, args...)
	return objects(t, "helm template", run(t, helm, all...), true)
}

// get walks obj along path (map keys, or list indexes as numbers in JSON form).
func get(t *testing.T, obj any, path ...any) any {
	t.Helper()
	cur := obj
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", path, k)
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			cur = l[k]
		}
	}
	return cur
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestChartValues(t *testing.T) {
	helm, _ := tools(t)
	objs := renderArgs(t, helm, "guard",
		"--set", "replicas=3",
		"--set", "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"--set-json", `resources={"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"cpu":"2","memory":"128Mi"}}`,
		"--set", "config.existingConfigMap=platform-policies",
		"--set", "webhook.failurePolicy=Ignore",
		"--set", "webhook.timeoutSeconds=5",
		"--set", "webhook.budget=4s",
		"--set-json", `webhook.excludedNamespaces=["kube-system","monitoring"]`,
		"--set-json", `webhook.objectSelector={"matchExpressions":[{"key":"attest.continuu.ms/skip","operator":"DoesNotExist"}]}`,
		"--set-json", `imagePullSecrets=[{"name":"regcred"}]`,
		"--set", "priorityClassName=platform-critical",
		"--set-json", `tolerations=[{"key":"dedicated","operator":"Equal","value":"platform","effect":"NoSchedule"}]`,
		"--set-json", `affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["system"]}]}]}}}`,
		"--set", "tracing.otlpEndpoint=http://otel-collector.monitoring:4317",
		"--set-json", `extraArgs=["--mode=audit"]`,
	)
	dep := objs["Deployment/platform/guard"]
	if dep == nil {
		t.Fatalf("no Deployment platform/guard in %v", keys(objs))
	}
	pod := get(t, dep, "spec", "template", "spec")
	c := get(t, pod, "containers", 0)
	checks := []struct {
		name      string
		got, want string
	}{
		{"replicas", js(get(t, dep, "spec", "replicas")), `3`},
		{"image", js(get(t, c, "image")), `"ghcr.io/continuums/attest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`},
		{"resources", js(get(t, c, "resources")), `{"limits":{"cpu":"2","memory":"128Mi"},"requests":{"cpu":"50m","memory":"64Mi"}}`},
		{"config map", js(get(t, pod, "volumes", 1)), `{"configMap":{"name":"platform-policies"},"name":"config"}`},
		{"pull secrets", js(get(t, pod, "imagePullSecrets")), `[{"name":"regcred"}]`},
		{"priority class", js(get(t, pod, "priorityClassName")), `"platform-critical"`},
		{"tolerations", js(get(t, pod, "tolerations")), `[{"effect":"NoSchedule","key":"dedicated","operator":"Equal","value":"platform"}]`},
		{"affinity", js(get(t, pod, "affinity")), `{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["system"]}]}]}}}`},
		{"args", js(get(t, c, "args")), `["serve","--port=9443","--tls-min-version=1.2","--metrics-bind-address=:8080","--health-probe-bind-address=:8081","--cert-dir=/tls","--cert-secret=platform/guard-tls","--webhook-configuration=guard","--cert-hosts=guard.platform.svc,guard.platform.svc.cluster.local","--config=/config/policies.yaml","--budget=4s","--failure-policy=Ignore","--otlp-endpoint=http://otel-collector.monitoring:4317","--mode=audit"]`},
		{"service account", js(get(t, pod, "serviceAccountName")), `"guard"`},
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		wh := objs[kind+"//guard"]
		if wh == nil {
			t.Fatalf("no %s guard", kind)
		}
		for i := range 2 {
			w := get(t, wh, "webhooks", i)
			checks = append(checks,
				struct{ name, got, want string }{kind + " failurePolicy", js(get(t, w, "failurePolicy")), `"Ignore"`},
				struct{ name, got, want string }{kind + " timeout", js(get(t, w, "timeoutSeconds")), `5`},
				struct{ name, got, want string }{kind + " service", js(get(t, w, "clientConfig", "service", "name")), `"guard"`},
				struct{ name, got, want string }{kind + " excluded namespaces", js(get(t, w, "namespaceSelector")), `{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","monitoring","platform"]}]}`},
			)
		}
		checks = append(checks, struct{ name, got, want string }{kind + " objectSelector", js(get(t, wh, "webhooks", 0, "objectSelector")), `{"matchExpressions":[{"key":"attest.continuu.ms/skip","operator":"DoesNotExist"}]}`})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
	if _, ok := objs["ConfigMap/platform/guard-config"]; ok {
		t.Error("config.existingConfigMap set, yet the chart renders its own ConfigMap")
	}
	for _, k := range []string{"Secret/platform/guard-tls", "Role/platform/guard-certs", "ClusterRole//guard", "ClusterRoleBinding//guard", "Service/platform/guard"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	if got := js(get(t, objs["Role/platform/guard-certs"], "rules", 1, "resourceNames")); got != `["guard-tls"]` {
		t.Errorf("certs Role writes %s, want the release's Secret", got)
	}
}

// TestChartCertManagerWithIssuer: an existing issuer replaces the chart's self-signed one.
func TestChartCertManagerWithIssuer(t *testing.T) {
	helm, _ := tools(t)
	objs := renderArgs(t, helm, "attest", "--set", "certificates.mode=cert-manager",
		"--set-json", `certificates.certManager.issuerRef={"kind":"ClusterIssuer","name":"corp-ca"}`)
	if _, ok := objs["Issuer/platform/attest-selfsigned"]; ok {
		t.Error("a self-signed Issuer rendered although issuerRef names one")
	}
	if got := js(get(t, objs["Certificate/platform/attest"], "spec", "issuerRef")); got != `{"kind":"ClusterIssuer","name":"corp-ca"}` {
		t.Errorf("issuerRef %s", got)
	}
	if got := js(get(t, objs["ValidatingWebhookConfiguration//attest"], "metadata", "annotations")); got != `{"cert-manager.io/inject-ca-from":"platform/attest"}` {
		t.Errorf("annotations %s", got)
	}
	for _, k := range []string{"Secret/platform/attest-tls", "Role/platform/attest-certs", "RoleBinding/platform/attest-certs"} {
		if _, ok := objs[k]; ok {
			t.Errorf("%s rendered in cert-manager mode", k)
		}
	}
}

// TestChartRejectsBadValues: every value the chart checks fails the render with a message naming it.
func TestChartRejectsBadValues(t *testing.T) {
	helm, _ := tools(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"certificate mode", []string{"--set", "certificates.mode=vault"}, `certificates.mode: "vault" is neither self nor cert-manager`},
		{"failure policy", []string{"--set", "webhook.failurePolicy=fail"}, `webhook.failurePolicy: "fail" is neither Fail nor Ignore`},
		{"timeout zero", []string{"--set", "webhook.timeoutSeconds=0"}, `webhook.timeoutSeconds: 0 is outside 1-30`},
		{"timeout above the API server's", []string{"--set", "webhook.timeoutSeconds=31"}, `webhook.timeoutSeconds: 31 is outside 1-30`},
		{"no config", []string{"--set", "config.policies="}, `config.policies (the policies.yaml content) or config.existingConfigMap`},
		{"gatekeeper without a ConfigMap", []string{"--set", "gatekeeper.enabled=true"}, `gatekeeper.configMap`},
		{"unknown value", []string{"--set", "replica=3"}, `replica`},
		{"OTLP endpoint without a scheme", []string{"--set", "tracing.otlpEndpoint=collector:4317"}, `otlpEndpoint`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", "attest", repo("charts", "attest"), "--namespace", "platform"}, tc.args...)
			out, err := runErr(helm, args...)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v does not say %q", err, tc.want)
			}
		})
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
