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
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/audit"
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

// describing records the name of every metric registered, including vectors no request has given a child yet
// (a reload counter before the first reload, the audit's gauges before the first audit), which Gather omits.
type describing struct {
	*prometheus.Registry
	names map[string]bool
}

func (d *describing) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(descs); close(descs) }()
	for desc := range descs {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return d.Registry.Register(c)
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
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
	reg := &describing{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
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
	// The verification and background-audit series, registered as attest serve registers them.
	if _, err := attestation.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewMetrics(reg); err != nil {
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
	names := reg.names
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

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardReadsRegisteredMetrics: every query of every panel parses as PromQL and reads only metrics attest
// serve registers, and the panels the dashboard promises are there.
func TestDashboardReadsRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "manifests", "monitoring", "attest-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	chartCopy, err := os.ReadFile(filepath.Join("..", "..", "charts", "attest", "files", "attest-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, chartCopy) {
		t.Error("charts/attest/files/attest-dashboard.json differs from manifests/monitoring/attest-dashboard.json: copy it")
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	known := registeredMetrics(t)
	p := parser.NewParser(parser.Options{})
	titles := map[string]bool{}
	queries := 0
	for _, panel := range d.Panels {
		titles[panel.Title] = true
		if panel.Type != "row" && len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, target := range panel.Targets {
			queries++
			// Grafana's interval variable, as Grafana substitutes it.
			expr, err := p.ParseExpr(strings.ReplaceAll(target.Expr, "$__rate_interval", "1m"))
			if err != nil {
				t.Errorf("panel %q: %q does not parse: %v", panel.Title, target.Expr, err)
				continue
			}
			reads := 0
			for _, sel := range parser.ExtractSelectors(expr) {
				for _, m := range sel {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						reads++
						if !known[m.Value] {
							t.Errorf("panel %q reads %s, which attest serve does not register", panel.Title, m.Value)
						}
					}
				}
			}
			if reads == 0 {
				t.Errorf("panel %q: %q reads no ATTEST metric", panel.Title, target.Expr)
			}
		}
	}
	for _, want := range []string{"Admissions by decision", "Violations by policy", "Admission latency against the timeout",
		"Verification cache hit rate", "Verifications and registry errors", "Exemptions active by policy",
		"Exemptions expiring within 72h", "Audit violations by policy and namespace", "Config reload status"} {
		if !titles[want] {
			t.Errorf("panel %q missing", want)
		}
	}
	if queries < 15 {
		t.Errorf("%d queries; the dashboard lost panels", queries)
	}
}
