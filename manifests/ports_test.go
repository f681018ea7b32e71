package manifests_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// TestPorts: the Deployment's flags, container ports, probes, the Services and the ServiceMonitor agree that the
// webhook port (9443) serves admissions only, the probes are plain HTTP on 8081 and metrics plain HTTP on 8080.
func TestPorts(t *testing.T) {
	var dep appsv1.Deployment
	readInto(t, filepath.Join("base", "deployment.yaml"), &dep)
	c := dep.Spec.Template.Spec.Containers[0]
	for _, flag := range []string{"--port=9443", "--tls-min-version=1.2", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(c.Args, flag) {
			t.Errorf("the Deployment's args %v lack %s", c.Args, flag)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := map[string]int32{"https": 9443, "metrics": 8080, "probes": 8081}; !maps.Equal(ports, want) {
		t.Errorf("container ports = %v, want %v", ports, want)
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		wantPath := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		if g := probe.HTTPGet; g.Path != wantPath || g.Port != intstr.FromString("probes") || g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s probe = %s %s on %s, want HTTP %s on probes", name, g.Scheme, g.Path, g.Port.String(), wantPath)
		}
	}

	var svc corev1.Service
	readInto(t, filepath.Join("base", "service.yaml"), &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != intstr.FromString("https") || svc.Spec.Ports[0].Port != 443 {
		t.Errorf("the webhook Service's ports = %+v, want 443 to https only", svc.Spec.Ports)
	}
	var metricsSvc corev1.Service
	readInto(t, filepath.Join("monitoring", "service.yaml"), &metricsSvc)
	if len(metricsSvc.Spec.Ports) != 1 || metricsSvc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("the metrics Service's ports = %+v, want the metrics port only", metricsSvc.Spec.Ports)
	}
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []struct {
				Port, Scheme, Path string
			} `json:"endpoints"`
		} `json:"spec"`
	}
	readInto(t, filepath.Join("monitoring", "servicemonitor.yaml"), &sm)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if metricsSvc.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service lacks (labels %v)", k, v, metricsSvc.Labels)
		}
	}
	if svc.Labels["app.kubernetes.io/component"] == sm.Spec.Selector.MatchLabels["app.kubernetes.io/component"] {
		t.Error("the ServiceMonitor also selects the webhook Service")
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Scheme != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v, want http /metrics on port metrics", sm.Spec.Endpoints)
	}

	// The cert-manager overlay replaces the args: it must keep the ports.
	raw, err := os.ReadFile(filepath.Join("overlays", "cert-manager", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--port=9443", "--tls-min-version=1.2", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !strings.Contains(string(raw), flag) {
			t.Errorf("the cert-manager overlay's args lack %s", flag)
		}
	}
}

func readInto(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
