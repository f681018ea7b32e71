// Package chart checks charts/attest against the kustomize manifests it must agree with: rendered with the default
// values it is manifests/base object by object, and each option (cert-manager, monitoring, gatekeeper.watch) is the
// matching overlay.
// It runs Helm (ATTEST_HELM, installed by the Makefile into the cache) and the control plane's kubectl
// (ATTEST_E2E_ASSETS) for `kubectl kustomize`, as `make e2e` sets them.
package chart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const releaseNamespace = "attest-system"

// helmLabels are the labels the chart adds that kustomize does not.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by"}

func tools(t *testing.T) (helm, kubectl string) {
	t.Helper()
	helm, assets := os.Getenv("ATTEST_HELM"), os.Getenv("ATTEST_E2E_ASSETS")
	if helm == "" || assets == "" {
		t.Skip("ATTEST_HELM (Helm, installed by `make e2e`) and ATTEST_E2E_ASSETS (the control plane's kubectl) are not both set")
	}
	return helm, filepath.Join(assets, "kubectl")
}

func repo(parts ...string) string { return filepath.Join(append([]string{"..", ".."}, parts...)...) }

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := runErr(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// render is `helm template attest charts/attest -n attest-system` with the CRDs and the given --set flags.
func render(t *testing.T, helm string, sets ...string) map[string]map[string]any {
	t.Helper()
	args := []string{"template", "attest", repo("charts", "attest"), "--namespace", releaseNamespace, "--include-crds"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return objects(t, "helm template", run(t, helm, args...), true)
}

func kustomize(t *testing.T, kubectl string, dir ...string) map[string]map[string]any {
	t.Helper()
	return objects(t, "kubectl kustomize", run(t, kubectl, "kustomize", repo(dir...)), false)
}

// objects splits a stream into objects keyed kind/namespace/name, with the labels only one side adds removed.
func objects(t *testing.T, source, stream string, fromHelm bool) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for i, doc := range strings.Split(stream, "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: document %d: %v", source, i, err)
		}
		if obj == nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		key := fmt.Sprintf("%s/%s/%s", obj["kind"], ns, meta["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("%s: %s twice", source, key)
		}
		labels, _ := meta["labels"].(map[string]any)
		if fromHelm {
			for _, l := range helmLabels {
				delete(labels, l)
			}
		} else if obj["kind"] == "CustomResourceDefinition" {
			// Helm installs crds/ as they are (never templated, never upgraded or deleted by Helm): the CRDs
			// carry no release labels, where kustomize's labels transformer adds its own.
			delete(labels, "app.kubernetes.io/name")
			delete(labels, "app.kubernetes.io/part-of")
		}
		if labels != nil && len(labels) == 0 {
			delete(meta, "labels")
		}
		out[key] = obj
	}
	return out
}

// compare reports every object one side has and the other lacks, and every field that differs.
func compare(t *testing.T, chart, kust map[string]map[string]any, onlyInKustomize ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, k := range onlyInKustomize {
		skip[k] = true
		if _, ok := kust[k]; !ok {
			t.Errorf("%s: expected only in kustomize, but kustomize does not render it", k)
		}
		if _, ok := chart[k]; ok {
			t.Errorf("%s: expected only in kustomize, but the chart renders it", k)
		}
	}
	var keys []string
	for k := range kust {
		keys = append(keys, k)
	}
	for k := range chart {
		if _, ok := kust[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, inChart := chart[k]
		m, inKust := kust[k]
		switch {
		case skip[k]:
		case !inChart:
			t.Errorf("%s: in kustomize, not in the chart", k)
		case !inKust:
			t.Errorf("%s: in the chart, not in kustomize", k)
		default:
			for _, d := range diff(k, c, m) {
				t.Error(d)
			}
		}
	}
}

// diff lists the paths where chart and kustomize differ.
func diff(path string, chart, kust any) []string {
	switch c := chart.(type) {
	case map[string]any:
		m, ok := kust.(map[string]any)
		if !ok {
			break
		}
		var out []string
		keys := map[string]bool{}
		for k := range c {
			keys[k] = true
		}
		for k := range m {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			out = append(out, diff(path+"."+k, c[k], m[k])...)
		}
		return out
	case []any:
		m, ok := kust.([]any)
		if !ok || len(m) != len(c) {
			break
		}
		var out []string
		for i := range c {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), c[i], m[i])...)
		}
		return out
	}
	if reflect.DeepEqual(chart, kust) {
		return nil
	}
	cj, _ := json.Marshal(chart)
	kj, _ := json.Marshal(kust)
	return []string{fmt.Sprintf("%s: chart %s, kustomize %s", path, cj, kj)}
}

func TestChartDefaultsAreManifestsBase(t *testing.T) {
	helm, kubectl := tools(t)
	base := kustomize(t, kubectl, "manifests", "base")
	// By default the Namespace comes from `helm install --create-namespace`, so Helm does not own it.
	compare(t, render(t, helm), base, "Namespace//attest-system")
	compare(t, render(t, helm, "namespace.create=true"), base)
}

func TestChartOptionsAreTheOverlays(t *testing.T) {
	helm, kubectl := tools(t)
	t.Run("cert-manager", func(t *testing.T) {
		compare(t, render(t, helm, "namespace.create=true", "certificates.mode=cert-manager"),
			kustomize(t, kubectl, "manifests", "overlays", "cert-manager"))
	})
	t.Run("monitoring", func(t *testing.T) {
		compare(t, render(t, helm, "namespace.create=true", "monitoring.serviceMonitor.enabled=true",
			"monitoring.prometheusRule.enabled=true", "monitoring.dashboard.enabled=true"),
			kustomize(t, kubectl, "manifests", "overlays", "monitored"))
	})
	t.Run("gatekeeper", func(t *testing.T) {
		gk := kustomize(t, kubectl, "manifests", "overlays", "gatekeeper")
		compare(t, render(t, helm, "namespace.create=true", "gatekeeper.watch=true"), gk)
		// With Gatekeeper installed it owns its CRDs: the chart leaves them out, the rest stays.
		compare(t, render(t, helm, "namespace.create=true", "gatekeeper.watch=true", "gatekeeper.installCRDs=false"), gk,
			"CustomResourceDefinition//constrainttemplates.templates.gatekeeper.sh",
			"CustomResourceDefinition//expansiontemplate.expansion.gatekeeper.sh",
			"CustomResourceDefinition//configs.config.gatekeeper.sh")
	})
}

func TestChartLint(t *testing.T) {
	helm, _ := tools(t)
	for _, sets := range [][]string{
		nil,
		{"certificates.mode=cert-manager", "monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true", "monitoring.dashboard.enabled=true"},
		{"gatekeeper.watch=true"},
	} {
		args := []string{"lint", "--strict", repo("charts", "attest")}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		out := run(t, helm, args...)
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %v:\n%s", sets, out)
		}
	}
}
