package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// ServerOptions configure the TLS server.
type ServerOptions struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key; they are reloaded when they change (controller-runtime's certwatcher).
	CertDir  string
	CertName string
	KeyName  string
	Validate http.Handler
	Mutate   http.Handler
	// Gatherer serves /metrics, together with controller-runtime's own webhook series.
	Gatherer prometheus.Gatherer
	// Ready reports whether the webhook can decide requests (policies compiled, config loaded).
	Ready func() error
}

// Server is controller-runtime's webhook server with ATTEST's paths registered.
type Server struct {
	srv crwebhook.Server
}

// NewServer registers /validate, /mutate, /healthz, /readyz and /metrics.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Validate == nil || o.Mutate == nil {
		return nil, fmt.Errorf("webhook server: validate and mutate handlers are required")
	}
	if o.CertDir == "" {
		return nil, fmt.Errorf("webhook server: a certificate directory is required")
	}
	if o.CertName == "" {
		o.CertName = "tls.crt"
	}
	if o.KeyName == "" {
		o.KeyName = "tls.key"
	}
	srv := crwebhook.NewServer(crwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, CertName: o.CertName, KeyName: o.KeyName})
	srv.Register("/validate", o.Validate)
	srv.Register("/mutate", o.Mutate)
	// ATTEST's own resources (PolicyException, Policy, PolicyConfig) have their own webhook entries and paths,
	// so their rules and failure policy are separate from the workloads'; the pipeline tells them apart by kind.
	srv.Register("/validate-policy-resources", o.Validate)
	srv.Register("/mutate-policy-resources", o.Mutate)
	srv.Register("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Register("/readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		if err := srv.StartedChecker()(r); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	gatherers := firstWins{crmetrics.Registry}
	if o.Gatherer != nil {
		gatherers = append(gatherers, o.Gatherer)
	}
	srv.Register("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	return &Server{srv: srv}, nil
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error { return s.srv.Start(ctx) }

// firstWins gathers several registries and keeps the first family of each name: controller-runtime registers the
// Go and process collectors in its own registry as soon as its manager package is linked (certificate rotation
// does), and ours has them too; plain prometheus.Gatherers would fail the whole scrape on the duplicates.
type firstWins []prometheus.Gatherer

func (g firstWins) Gather() ([]*dto.MetricFamily, error) {
	var out []*dto.MetricFamily
	seen := map[string]bool{}
	var errs []error
	for _, gatherer := range g {
		families, err := gatherer.Gather()
		if err != nil {
			errs = append(errs, err)
		}
		for _, f := range families {
			if !seen[f.GetName()] {
				seen[f.GetName()] = true
				out = append(out, f)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, errors.Join(errs...)
}
