package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/errgroup"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// The collector settings of a process that serves the webhook (attest serve sets them unless GOGC or GOMEMLIMIT
// is set). Its live heap is small and steady (compiled policies, caches: 5-9 MiB with the example configuration),
// so collecting at five times it trades a little memory for fewer collections, which is what an admission's tail
// latency waits for. The soft limit bounds that: with 10,000 cached verifications (about 39 MiB live, measured by
// hack/loadgen -cache) the runtime holds 64 MiB rather than 195, within the 100 MiB budget with the binary's own
// mapped pages; the live heap stays far below it, so the collector never runs continuously. (Collecting at 11
// times the live heap, bounded by the same limit, measured no better: hack/loadgen -server-gogc.)
const (
	GCPercent   = 400
	MemoryLimit = 64 << 20
)

// ServerOptions configure the webhook's listeners: the TLS port the API server calls, and plain-HTTP ports for
// metrics and for the kubelet's probes, as controller-runtime's managers separate them. The TLS port serves the
// admission paths only, so what Prometheus and the kubelet reach is never the port that decides admissions.
type ServerOptions struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key; they are reloaded when they change (controller-runtime's certwatcher).
	CertDir  string
	CertName string
	KeyName  string
	// CertificatesWritten, when set, holds back the TLS port until it is closed (a managed certificate is being
	// issued); metrics and probes serve at once, and /readyz fails until the TLS port is up.
	CertificatesWritten <-chan struct{}
	// TLSMinVersion is the lowest TLS version the webhook port accepts: tls.VersionTLS12 (the default) or
	// tls.VersionTLS13. It is set explicitly so a GODEBUG setting cannot lower it. Cipher suites are Go's
	// defaults: AEAD with forward secrecy first, no RSA key exchange, 3DES or RC4; TLS 1.3's are not configurable.
	TLSMinVersion uint16
	// EnableHTTP2 offers HTTP/2 by ALPN. Off by default, as controller-runtime advises since HTTP/2 Rapid Reset
	// (CVE-2023-44487) and stream exhaustion (CVE-2023-39325): the API server calls webhooks over HTTP/1.1 just as
	// well, and each connection then carries one request at a time.
	EnableHTTP2 bool
	Validate    http.Handler
	Mutate      http.Handler
	// MetricsBindAddress is host:port of the plain-HTTP /metrics listener; "" or "0" serves no metrics.
	MetricsBindAddress string
	// Gatherer serves /metrics, together with controller-runtime's own webhook series.
	Gatherer prometheus.Gatherer
	// HealthProbeBindAddress is host:port of the plain-HTTP /healthz and /readyz listener; "" or "0" serves none.
	HealthProbeBindAddress string
	// PprofBindAddress is host:port of a plain-HTTP listener serving Go's runtime profiles under /debug/pprof/
	// (heap, CPU, goroutines, allocations) for diagnosing memory or latency in place; "" or "0" (the default)
	// serves none. Profiles reveal internals, so bind it to loopback or keep it off outside a diagnosis.
	PprofBindAddress string
	// Ready reports whether the webhook can decide requests (policies compiled, config loaded); /readyz also
	// requires the TLS port to accept connections.
	Ready func() error
}

// Server is controller-runtime's webhook server with ATTEST's paths registered, and the metrics and probe
// listeners beside it.
type Server struct {
	webhook      crwebhook.Server
	certsWritten <-chan struct{}
	plain        []plainServer
	readyOpt     func() error
}

// Ready says whether /readyz answers ok: the options' Ready check holds and the TLS port serves.
func (s *Server) Ready() error {
	req, err := http.NewRequest(http.MethodGet, "/readyz", nil)
	if err != nil {
		return err
	}
	return s.ready(req)
}

func (s *Server) ready(r *http.Request) error {
	if s.readyOpt != nil {
		if err := s.readyOpt(); err != nil {
			return err
		}
	}
	return s.webhook.StartedChecker()(r)
}

type plainServer struct {
	name, addr string
	handler    http.Handler
}

// TLSVersion reads a --tls-min-version value: 1.2 or 1.3, or Kubernetes' spelling VersionTLS12, VersionTLS13.
func TLSVersion(name string) (uint16, error) {
	switch name {
	case "1.2", "VersionTLS12":
		return tls.VersionTLS12, nil
	case "1.3", "VersionTLS13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS minimum version %q: want 1.2 or 1.3 (older versions are not accepted)", name)
}

// NewServer registers the admission paths on the TLS port, /metrics on the metrics port and /healthz and /readyz
// on the probe port.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Validate == nil || o.Mutate == nil {
		return nil, fmt.Errorf("webhook server: validate and mutate handlers are required")
	}
	if o.CertDir == "" {
		return nil, fmt.Errorf("webhook server: a certificate directory is required")
	}
	switch o.TLSMinVersion {
	case 0:
		o.TLSMinVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("webhook server: TLS minimum version %s is not accepted: want TLS 1.2 or 1.3", tls.VersionName(o.TLSMinVersion))
	}
	metricsOn, probesOn, pprofOn := enabled(o.MetricsBindAddress), enabled(o.HealthProbeBindAddress), enabled(o.PprofBindAddress)
	bound := map[string]string{}
	for _, a := range []struct {
		flag, addr string
		on         bool
	}{{"metrics", o.MetricsBindAddress, metricsOn}, {"health probe", o.HealthProbeBindAddress, probesOn}, {"pprof", o.PprofBindAddress, pprofOn}} {
		if !a.on {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return nil, fmt.Errorf("webhook server: %s bind address %q: want HOST:PORT, :PORT or 0 to disable: %w", a.flag, a.addr, err)
		}
		if other, ok := bound[a.addr]; ok {
			return nil, fmt.Errorf("webhook server: %s and %s both bind %s; give them separate ports", other, a.flag, a.addr)
		}
		bound[a.addr] = a.flag
	}
	if o.CertName == "" {
		o.CertName = "tls.crt"
	}
	if o.KeyName == "" {
		o.KeyName = "tls.key"
	}
	minVersion, http2 := o.TLSMinVersion, o.EnableHTTP2
	srv := crwebhook.NewServer(crwebhook.Options{
		Host: o.Host, Port: o.Port, CertDir: o.CertDir, CertName: o.CertName, KeyName: o.KeyName,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = minVersion
			if !http2 {
				// controller-runtime offers ["h2"]; a client that asks for HTTP/2 gets HTTP/1.1.
				c.NextProtos = []string{"http/1.1"}
			}
		}},
	})
	srv.Register("/validate", o.Validate)
	srv.Register("/mutate", o.Mutate)
	// ATTEST's own resources (PolicyException, Policy, PolicyConfig) have their own webhook entries and paths,
	// so their rules and failure policy are separate from the workloads'; the pipeline tells them apart by kind.
	srv.Register("/validate-policy-resources", o.Validate)
	srv.Register("/mutate-policy-resources", o.Mutate)
	s := &Server{webhook: srv, certsWritten: o.CertificatesWritten, readyOpt: o.Ready}
	if metricsOn {
		gatherers := firstWins{crmetrics.Registry}
		if o.Gatherer != nil {
			gatherers = append(gatherers, o.Gatherer)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
		s.plain = append(s.plain, plainServer{name: "metrics", addr: o.MetricsBindAddress, handler: mux})
	}
	if probesOn {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		})
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if err := s.ready(r); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		s.plain = append(s.plain, plainServer{name: "health probe", addr: o.HealthProbeBindAddress, handler: mux})
	}
	if pprofOn {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine, block, mutex, threadcreate
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.plain = append(s.plain, plainServer{name: "pprof", addr: o.PprofBindAddress, handler: mux})
	}
	return s, nil
}

func enabled(addr string) bool { return addr != "" && addr != "0" }

// Start binds the metrics and probe ports (failing at once if either is taken), opens the TLS port once the
// certificates are written, and serves until ctx ends or one listener fails.
func (s *Server) Start(ctx context.Context) error {
	listeners := make([]net.Listener, len(s.plain))
	for i, p := range s.plain {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			for _, prev := range listeners[:i] {
				_ = prev.Close()
			}
			return fmt.Errorf("%s server: %w", p.name, err)
		}
		listeners[i] = l
	}
	g, ctx := errgroup.WithContext(ctx)
	for i, p := range s.plain {
		g.Go(func() error { return servePlain(ctx, p, listeners[i]) })
	}
	g.Go(func() error {
		if s.certsWritten != nil {
			select {
			case <-s.certsWritten:
			case <-ctx.Done():
				return nil
			}
		}
		return s.webhook.Start(ctx)
	})
	return g.Wait()
}

// servePlain serves HTTP/1.1 without TLS (Go serves no cleartext HTTP/2 unless asked) until ctx ends.
func servePlain(ctx context.Context, p plainServer, l net.Listener) error {
	srv := &http.Server{
		Handler:           p.handler,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		MaxHeaderBytes:    1 << 20,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", p.name, err)
	}
	if err := <-shutdown; err != nil {
		return fmt.Errorf("%s server: shutdown: %w", p.name, err)
	}
	return nil
}

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
