// Package monitoring checks manifests/monitoring against the metrics `attest serve` registers: every series an
// alert reads must exist, so a renamed metric cannot silently disable an alert.
package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"k8s.io/client-go/rest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

type rule struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
}

type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

var fqName = regexp.MustCompile(`fqName: "([a-z_:]+)"`)

// registeredMetrics serves one denied admission through the webhook handler with metrics, as `attest serve` wires
// them, and returns the metric family names gathered.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	srcs, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.Compile(ctx, srcs)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfgPath := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(cfgPath, []byte("policies: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	watcher, err := config.NewWatcher(cfgPath, engine, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: watcher.Current})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewHandler(webhook.HandlerOptions{Decider: eval, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	obj := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"nginx","securityContext":{"privileged":true}}]}}`
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"default","name":"p","userInfo":{"username":"u"},"object":` + obj + `}}`
	for _, body := range []string{review, "not a review"} {
		req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		_, _ = io.Copy(io.Discard, rec.Body)
	}
	// The exemption gauges are read from the cluster's cache at scrape time; without a cluster only their
	// descriptions exist, which name them just the same.
	cluster, err := exemptions.NewCluster(&rest.Config{Host: "https://127.0.0.1:1"}, reg, func() *exemptions.Governance { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	descs := make(chan *prometheus.Desc, 16)
	cluster.Describe(descs)
	close(descs)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

func TestAlertsReadRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "manifests", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&pr); err != nil {
		t.Fatal(err)
	}
	known := registeredMetrics(t)
	p := parser.NewParser(parser.Options{})
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: expression does not parse: %v", r.Alert, err)
				continue
			}
			for _, sel := range parser.ExtractSelectors(expr) {
				for _, m := range sel {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual && !known[m.Value] {
						t.Errorf("%s reads %s, which attest serve does not register", r.Alert, m.Value)
					}
				}
			}
		}
	}
	for _, want := range []string{"CriticalPolicyViolation", "AttestWebhookErrors", "AttestLatencyNearTimeout"} {
		if !alerts[want] {
			t.Errorf("alert %s missing", want)
		}
	}
}
