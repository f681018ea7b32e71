package webhook

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/continuums/attest/admission"
)

// Metrics are the webhook's Prometheus series; names follow the policy documents. Labels are bounded: policy,
// result, severity, operation, kind, decision — never image, user or namespace.
type Metrics struct {
	evaluations *prometheus.CounterVec
	severity    *prometheus.CounterVec
	evalSeconds *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	reqSeconds  *prometheus.HistogramVec
	kinds       boundedLabel
}

// maxKindLabels bounds the kind label: the webhook configuration decides which kinds arrive, but anyone who can
// reach the port can post a review with any kind, so distinct values beyond this are counted as "other".
const maxKindLabels = 64

// boundedLabel admits at most max distinct values, then maps the rest to "other".
type boundedLabel struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (b *boundedLabel) value(v string, max int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= max {
		return "other"
	}
	b.seen[v] = true
	return v
}

// operationLabel keeps the four admission operations and maps anything else to "unknown".
func operationLabel(op string) string {
	switch op {
	case "CREATE", "UPDATE", "DELETE", "CONNECT":
		return op
	}
	return "unknown"
}

// engineLabel bounds the engine label to the engines ATTEST has.
func engineLabel(engine string) string {
	switch engine {
	case "opa", "gatekeeper", "cedar":
		return engine
	case "":
		return "opa"
	}
	return "custom"
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_policy_evaluations_total",
			Help: "Policy evaluations by policy and result (passed, failed, exempted, error).",
		}, []string{"policy", "result"}),
		severity: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_policy_violation_severity",
			Help: "Violations found, by severity and policy.",
		}, []string{"severity", "policy"}),
		evalSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attest_policy_evaluation_duration_seconds",
			Help:    "Time to evaluate one policy for one request.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1},
		}, []string{"engine"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_admission_requests_total",
			Help: "Admission requests by operation, kind, decision (allowed, warned, denied, error) and dry run.",
		}, []string{"operation", "kind", "decision", "dry_run"}),
		reqSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attest_admission_request_duration_seconds",
			Help:    "Time from reading an admission request to writing its answer.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5, 5, 8, 10},
		}, []string{"operation", "kind", "decision"}),
	}
	for _, c := range []prometheus.Collector{m.evaluations, m.severity, m.evalSeconds, m.requests, m.reqSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one answered request; it reads the decision and never changes it.
func (m *Metrics) observe(in admission.Input, d admission.Decision, decision string) {
	req := in.Request
	kind := "unknown"
	if req.Kind != "" {
		kind = m.kinds.value(req.Kind, maxKindLabels)
	}
	op := operationLabel(req.Operation)
	m.requests.WithLabelValues(op, kind, decision, strconv.FormatBool(req.DryRun)).Inc()
	m.reqSeconds.WithLabelValues(op, kind, decision).Observe(d.Duration.Seconds())
	for _, r := range d.Results {
		m.evaluations.WithLabelValues(r.Policy, string(r.Outcome)).Inc()
		m.evalSeconds.WithLabelValues(engineLabel(r.Engine)).Observe(r.Duration.Seconds())
	}
	for _, v := range d.Violations {
		m.severity.WithLabelValues(string(v.Severity), v.Policy).Inc()
	}
}
