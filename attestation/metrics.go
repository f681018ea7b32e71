//go:build !lean

package attestation

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the verification series. Labels are bounded: result only, never image or registry.
//
//	attest_verification_total{result="passed|failed|error"}      verifications performed (cache hits excluded)
//	attest_verification_cache_requests_total{result="hit|miss"}   verdict lookups
//	attest_verification_duration_seconds                          time of each verification performed
type Metrics struct {
	verifications *prometheus.CounterVec
	cache         *prometheus.CounterVec
	duration      prometheus.Histogram
}

// NewMetrics registers the series on reg; create it once per process (it outlives configuration reloads).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_verification_total",
			Help: "Image verifications performed (signatures and attestations of one digest), by result: passed, failed, error.",
		}, []string{"result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_verification_cache_requests_total",
			Help: "Verification verdict lookups by result: hit (a cached verdict answered) or miss.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "attest_verification_duration_seconds",
			Help:    "Time to verify one digest against the registry (cache hits excluded).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}),
	}
	for _, r := range []string{resultPassed, resultFailed, resultError} {
		m.verifications.WithLabelValues(r)
	}
	m.cache.WithLabelValues("hit")
	m.cache.WithLabelValues("miss")
	for _, c := range []prometheus.Collector{m.verifications, m.cache, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) verified(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.verifications.WithLabelValues(result).Inc()
	if d > 0 {
		m.duration.Observe(d.Seconds())
	}
}

func (m *Metrics) cacheLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cache.WithLabelValues("hit").Inc()
	} else {
		m.cache.WithLabelValues("miss").Inc()
	}
}
