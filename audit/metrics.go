package audit

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit's gauges, replaced after each completed run.
type Metrics struct {
	violations *prometheus.GaugeVec
	lastRun    prometheus.Gauge
	duration   prometheus.Gauge
	objects    prometheus.Gauge
	requests   prometheus.Counter
}

// NewMetrics registers the audit metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "attest_audit_violations",
			Help: "Violations (fail and warn results) the last background audit found, by policy, namespace and mode."},
			[]string{"policy", "namespace", "mode"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "attest_audit_last_run_timestamp_seconds",
			Help: "When the last background audit completed (Unix seconds)."}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "attest_audit_duration_seconds",
			Help: "How long the last background audit took."}),
		objects: prometheus.NewGauge(prometheus.GaugeOpts{Name: "attest_audit_objects",
			Help: "Objects the last background audit listed (folded Pods and ReplicaSets included)."}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: "attest_audit_api_requests_total",
			Help: "Requests the background audit sent to the API server (lists, report and draft writes, the Lease)."}),
	}
	for _, c := range []prometheus.Collector{m.violations, m.lastRun, m.duration, m.objects, m.requests} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records a completed run that ended at end (Unix seconds).
func (m *Metrics) observe(st Stats, end float64) {
	if m == nil {
		return
	}
	m.violations.Reset()
	for k, n := range st.Violations {
		m.violations.WithLabelValues(k.Policy, k.Namespace, k.Mode).Set(float64(n))
	}
	m.lastRun.Set(end)
	m.duration.Set(st.Duration.Seconds())
	m.objects.Set(float64(st.Objects))
}

// RoundTripper counts the requests that go through rt in attest_audit_api_requests_total (rest.Config.Wrap).
func (m *Metrics) RoundTripper(rt http.RoundTripper) http.RoundTripper {
	return countingTransport{rt: rt, n: m.requests}
}

type countingTransport struct {
	rt http.RoundTripper
	n  prometheus.Counter
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Inc()
	return c.rt.RoundTrip(r)
}
