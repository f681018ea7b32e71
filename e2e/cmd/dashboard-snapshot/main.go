// Command dashboard-snapshot draws manifests/monitoring/attest-dashboard.json from a real run, without Grafana
// (neither a registry nor Debian has it here): it starts the built `attest serve` (TLS, the example policies plus a
// trust policy over a go-containerregistry registry on 127.0.0.1, and one registry that refuses connections), sends
// it a mix of admissions for a few minutes, scrapes /metrics every few seconds into Prometheus's TSDB, evaluates
// each panel's own PromQL with Prometheus's engine (used as a library), draws the panels as SVG on a page laid out
// by their gridPos, and has headless Chromium screenshot the page.
//
//	go run ./cmd/dashboard-snapshot -attest ../bin/attest-full -repo .. -out ../docs/dashboard.png
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/teststorage"

	"github.com/continuums/attest/webhook/webhooktest"
)

type options struct {
	attest, repo, out, chromium string
	duration, scrape            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.attest, "attest", "bin/attest-full", "the full attest binary (it runs attest serve)")
	flag.StringVar(&o.repo, "repo", ".", "the checkout (examples/ and manifests/monitoring are read from it)")
	flag.StringVar(&o.out, "out", "docs/dashboard.png", "the PNG to write")
	flag.StringVar(&o.chromium, "chromium", "chromium", "headless Chromium for the screenshot")
	flag.DurationVar(&o.duration, "duration", 3*time.Minute, "how long to send admissions")
	flag.DurationVar(&o.scrape, "scrape", 5*time.Second, "scrape interval")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "attest-dashboard-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// A registry with three unsigned images: verifying them fails (no signature), and the failures are cached for
	// the negative TTL, so the cache both misses and hits.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	reg := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go func() { _ = reg.Serve(l) }()
	defer func() { _ = reg.Close() }()
	host := l.Addr().String()
	var images []string
	for _, repo := range []string{"team/app", "team/proxy", "team/migrate"} {
		img, err := random.Image(256, 1)
		if err != nil {
			return err
		}
		ref, err := name.ParseReference(host+"/"+repo+":1", name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		images = append(images, ref.String())
	}
	// And one that refuses connections: verification errors, never cached.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	down := closed.Addr().String()
	_ = closed.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	example, err := os.ReadFile(filepath.Join(o.repo, "examples", "policies.yaml"))
	if err != nil {
		return err
	}
	cfg := strings.Replace(string(example), "- 127.0.0.1:5000/", "- "+host+"/\n        - "+down+"/", 1)
	if cfg == string(example) {
		return fmt.Errorf("examples/policies.yaml no longer lists 127.0.0.1:5000/ under trusted_registries")
	}
	cfg += fmt.Sprintf(`
trust:
  noMatch: audit
  policies:
    - name: loopback
      images: ["%s/**", "%s/**"]
      authorities:
        - name: release-key
          key: {pemFile: release.pub}
`, host, down)
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	pool, err := webhooktest.WriteServingCert(dir, "127.0.0.1")
	if err != nil {
		return err
	}
	ports, err := webhooktest.FreePorts(3)
	if err != nil {
		return err
	}
	serve := exec.Command(o.attest, "serve", fmt.Sprintf("--port=%d", ports[0]), "--host=127.0.0.1", "--cert-dir="+dir,
		"--config="+filepath.Join(dir, "policies.yaml"), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]), "--verify-negative-ttl=20s", "--log-level=error")
	var serveLog bytes.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	client := webhooktest.Client(pool)
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])
	if err := waitReady(client, ready); err != nil {
		return fmt.Errorf("%w\n%s", err, serveLog.String())
	}
	store, err := teststorage.NewWithError()
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1])
	validate := fmt.Sprintf("https://127.0.0.1:%d/validate", ports[0])
	start := time.Now()
	reqs := mix(images, down)
	next := start
	n := 0
	for time.Since(start) < o.duration {
		if time.Now().After(next) {
			if err := scrape(client, metricsURL, store); err != nil {
				return err
			}
			next = next.Add(o.scrape)
		}
		// Bursts and lulls, so the rates move.
		phase := math.Sin(float64(time.Since(start)) / float64(40*time.Second))
		body := reqs[n%len(reqs)]
		n++
		if _, err := post(client, validate, body); err != nil {
			return err
		}
		time.Sleep(time.Duration(20+15*phase) * time.Millisecond)
	}
	if err := scrape(client, metricsURL, store); err != nil {
		return err
	}
	end := time.Now()
	fmt.Printf("%d admissions in %s, scraped every %s\n", n, end.Sub(start).Round(time.Second), o.scrape)
	page, err := render(o.repo, store, start, end)
	if err != nil {
		return err
	}
	htmlPath := filepath.Join(dir, "dashboard.html")
	if err := os.WriteFile(htmlPath, page, 0o600); err != nil {
		return err
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	shot := exec.Command(o.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1600,1270", "--screenshot="+out, "file://"+htmlPath)
	shot.Env = append(os.Environ(), "HOME="+dir)
	if b, err := shot.CombinedOutput(); err != nil {
		return fmt.Errorf("chromium: %w\n%s", err, b)
	}
	fmt.Println("wrote", out)
	return nil
}

func waitReady(c *http.Client, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("attest serve not ready within 60s")
}

func post(c *http.Client, url string, body []byte) (int, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// mix is the traffic: compliant Deployments of the loopback images, a privileged Pod, an image from an untrusted
// registry, one from the registry that is down, a Pod with no limits, and an unreadable request.
func mix(images []string, down string) [][]byte {
	ctr := func(name, image string, extra string) string {
		return fmt.Sprintf(`{"name":%q,"image":%q,"resources":{"limits":{"cpu":"500m","memory":"128Mi"}}%s}`, name, image, extra)
	}
	pod := func(uid, kind string, containers ...string) []byte {
		spec := `{"containers":[` + strings.Join(containers, ",") + `]}`
		obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-%s","namespace":"shop"},"spec":%s}`, uid, spec)
		group, version := "", "v1"
		if kind == "Deployment" {
			group, version = "apps", "v1"
			obj = fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d-%s","namespace":"shop"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":%s}}}`, uid, spec)
		}
		return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":%q,"kind":{"group":%q,"version":%q,"kind":%q},"resource":{"group":%q,"version":%q,"resource":"%ss"},"operation":"CREATE","namespace":"shop","name":"x","userInfo":{"username":"ci"},"object":%s}}`,
			uid, group, version, kind, group, version, strings.ToLower(kind), obj))
	}
	var out [][]byte
	for i, img := range images {
		out = append(out, pod(fmt.Sprint("d", i), "Deployment", ctr("app", img, "")), pod(fmt.Sprint("p", i), "Pod", ctr("app", img, "")))
	}
	out = append(out,
		pod("priv", "Pod", ctr("app", images[0], `,"securityContext":{"privileged":true}`)),
		pod("untrusted", "Pod", ctr("app", "quay.io/elsewhere/app:1", "")),
		pod("down", "Pod", ctr("app", down+"/team/app:1", "")),
		pod("nolimits", "Deployment", fmt.Sprintf(`{"name":"app","image":%q}`, images[1])),
		[]byte(`{"kind":"not a review"`),
	)
	return out
}

// scrape reads /metrics and appends every sample to the TSDB at the scrape time.
func scrape(c *http.Client, url string, store *teststorage.TestStorage) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("parse /metrics: %w", err)
	}
	ts := time.Now().UnixMilli()
	app := store.Appender(context.Background())
	add := func(name string, m *dto.Metric, v float64, extra ...string) error {
		b := labels.NewBuilder(labels.EmptyLabels())
		b.Set(labels.MetricName, name)
		b.Set("job", "attest")
		for _, lp := range m.GetLabel() {
			b.Set(lp.GetName(), lp.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			b.Set(extra[i], extra[i+1])
		}
		_, err := app.Append(0, b.Labels(), ts, v)
		return err
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var err error
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				err = add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				err = add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				err = add(name, m, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					if err = add(name+"_bucket", m, float64(b.GetCumulativeCount()), "le", model.FloatString(b.GetUpperBound()).String()); err != nil {
						break
					}
				}
				if err == nil {
					err = add(name+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				}
				if err == nil {
					err = add(name+"_sum", m, h.GetSampleSum())
				}
				if err == nil {
					err = add(name+"_count", m, float64(h.GetSampleCount()))
				}
			}
			if err != nil {
				return fmt.Errorf("append %s: %w", name, err)
			}
		}
	}
	return app.Commit()
}

type panel struct {
	Title       string                   `json:"title"`
	Type        string                   `json:"type"`
	Description string                   `json:"description"`
	GridPos     struct{ X, Y, W, H int } `json:"gridPos"`
	Targets     []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds struct {
				Steps []struct {
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type series struct {
	name   string
	points []promql.FPoint
}

// render evaluates each panel's queries over the run and lays the panels out as Grafana would (24 columns).
func render(repo string, store *teststorage.TestStorage, start, end time.Time) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(repo, "manifests", "monitoring", "attest-dashboard.json"))
	if err != nil {
		return nil, err
	}
	var d struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 5e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	const colW, rowH = 1600.0 / 24, 30.0
	var b strings.Builder
	fmt.Fprintf(&b, `<html><head><style>body{margin:0;background:#111217;font-family:sans-serif;color:#ccccdc}
.p{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;box-sizing:border-box;padding:4px 8px;overflow:hidden}
.t{font-size:13px;font-weight:600;margin-bottom:2px}.r{position:absolute;font-size:15px;font-weight:600;color:#ccccdc}
.l{font-size:10px}.big{font-size:34px;font-weight:600}</style></head><body>
<div style="position:absolute;left:8px;top:4px;font-size:16px">%s — attest serve under a load run, %s (Prometheus engine over scraped /metrics)</div>`,
		html.EscapeString(d.Title), end.Sub(start).Round(time.Second))
	colors := []string{"#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a"}
	for _, p := range d.Panels {
		x, y, w, h := float64(p.GridPos.X)*colW, 28+float64(p.GridPos.Y)*rowH, float64(p.GridPos.W)*colW, float64(p.GridPos.H)*rowH
		if p.Type == "row" {
			fmt.Fprintf(&b, `<div class="r" style="left:%.0fpx;top:%.0fpx">%s</div>`, x+8, y+4, html.EscapeString(p.Title))
			continue
		}
		var all []series
		for _, t := range p.Targets {
			expr := strings.ReplaceAll(t.Expr, "$__rate_interval", "1m")
			q, err := engine.NewRangeQuery(context.Background(), store, nil, expr, start.Add(time.Minute), end, 5*time.Second)
			if err != nil {
				return nil, fmt.Errorf("panel %q: %w", p.Title, err)
			}
			res := q.Exec(context.Background())
			if res.Err != nil {
				return nil, fmt.Errorf("panel %q: %w", p.Title, res.Err)
			}
			m, err := res.Matrix()
			if err != nil {
				return nil, err
			}
			for _, s := range m {
				// The engine pools its point slices and reuses them once the query is closed: keep a copy.
				all = append(all, series{name: legend(t.LegendFormat, s.Metric), points: slices.Clone(s.Floats)})
				if len(s.Floats) > 0 {
					fmt.Printf("  %-40s %-28s last %s\n", p.Title, legend(t.LegendFormat, s.Metric), format(s.Floats[len(s.Floats)-1].F, p.FieldConfig.Defaults.Unit))
				}
			}
			q.Close()
		}
		sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
		fmt.Fprintf(&b, `<div class="p" style="left:%.0fpx;top:%.0fpx;width:%.0fpx;height:%.0fpx"><div class="t">%s</div>`,
			x+2, y+2, w-4, h-4, html.EscapeString(p.Title))
		switch p.Type {
		case "timeseries":
			b.WriteString(chart(all, w-20, h-60, p.FieldConfig.Defaults.Unit, thresholds(p), colors))
		default: // stat and table: the last value of each series
			if len(all) == 0 {
				b.WriteString(`<div class="big" style="color:#8e8e8e">No data</div>`)
			}
			for i, s := range all {
				last := s.points[len(s.points)-1].F
				if p.Type == "table" {
					fmt.Fprintf(&b, `<div class="l">%s: %s</div>`, html.EscapeString(s.name), format(last, ""))
					continue
				}
				fmt.Fprintf(&b, `<div><span class="big" style="color:%s">%s</span> <span class="l">%s</span></div>`, colors[i%len(colors)], format(last, p.FieldConfig.Defaults.Unit), html.EscapeString(s.name))
			}
		}
		b.WriteString(`</div>`)
	}
	b.WriteString(`</body></html>`)
	return []byte(b.String()), nil
}

func thresholds(p panel) []float64 {
	var out []float64
	for _, s := range p.FieldConfig.Defaults.Thresholds.Steps {
		if s.Value != nil {
			out = append(out, *s.Value)
		}
	}
	return out
}

func legend(format string, m labels.Labels) string {
	out := format
	m.Range(func(l labels.Label) { out = strings.ReplaceAll(out, "{{"+l.Name+"}}", l.Value) })
	if out == "" {
		return m.String()
	}
	return out
}

func format(v float64, unit string) string {
	switch unit {
	case "percentunit":
		return fmt.Sprintf("%.0f%%", v*100)
	case "s":
		switch {
		case v < 0.001:
			return fmt.Sprintf("%.0fµs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.1fms", v*1e3)
		}
		return fmt.Sprintf("%.2fs", v)
	case "reqps":
		return fmt.Sprintf("%.1f req/s", v)
	case "ops":
		return fmt.Sprintf("%.2f/s", v)
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// chart draws series as polylines over a shared time axis, with the panel's thresholds as dashed lines when they
// fall within the plotted range (or the range is latency, where the budget is the point).
func chart(all []series, w, h float64, unit string, marks []float64, colors []string) string {
	var minT, maxT int64 = math.MaxInt64, math.MinInt64
	maxV := 0.0
	for _, s := range all {
		for _, p := range s.points {
			minT, maxT = min(minT, p.T), max(maxT, p.T)
			if !math.IsNaN(p.F) && !math.IsInf(p.F, 0) {
				maxV = max(maxV, p.F)
			}
		}
	}
	if len(all) == 0 || maxT <= minT {
		return `<div class="big" style="color:#8e8e8e">No data</div>`
	}
	if maxV == 0 {
		maxV = 1
	}
	maxV *= 1.15
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%.0f" height="%.0f" style="display:block"><g font-size="10" fill="#8e8e8e">`, w, h)
	const left = 56.0
	pw := w - left
	yOf := func(v float64) float64 { return h - 4 - (h-8)*v/maxV }
	for i := 0; i <= 3; i++ {
		v := maxV * float64(i) / 3.15
		fmt.Fprintf(&b, `<text x="0" y="%.1f">%s</text><line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#2c3235"/>`, yOf(v)+3, format(v, unit), left, w, yOf(v), yOf(v))
	}
	b.WriteString(`</g>`)
	for _, m := range marks {
		if m > 0 && m <= maxV {
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#f2495c" stroke-dasharray="4 3"/>`, left, w, yOf(m), yOf(m))
		}
	}
	for i, s := range all {
		var pts []string
		for _, p := range s.points {
			if math.IsNaN(p.F) || math.IsInf(p.F, 0) {
				continue
			}
			x := left + pw*float64(p.T-minT)/float64(maxT-minT)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, yOf(p.F)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke-width="1.6" stroke="%s" points="%s"/>`, colors[i%len(colors)], strings.Join(pts, " "))
	}
	b.WriteString(`</svg><div class="l">`)
	for i, s := range all {
		fmt.Fprintf(&b, `<span style="color:%s">■</span> %s &nbsp; `, colors[i%len(colors)], html.EscapeString(s.name))
	}
	b.WriteString(`</div>`)
	return b.String()
}
