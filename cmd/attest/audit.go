//go:build !lean

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// auditOptions are serve's background-audit flags.
type auditOptions struct {
	interval time.Duration
	lease    string
	workers  int
	skip     []string
}

func (o *auditOptions) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&o.interval, "audit-interval", 10*time.Minute, "how often the replica holding the audit Lease audits every object in the cluster into PolicyReports (also at once when the policy configuration changes); 0 disables the audit")
	f.StringVar(&o.lease, "audit-lease", "", "NAMESPACE/NAME of the coordination.k8s.io Lease that elects the one replica that audits (default: $POD_NAMESPACE, else attest-system, /attest-audit)")
	f.StringSliceVar(&o.skip, "audit-skip-namespaces", audit.DefaultSkipNamespaces, "namespaces the audit leaves out: those the webhook configurations' namespaceSelector excludes")
	f.IntVar(&o.workers, "audit-workers", 0, "objects the audit evaluates at once (default: the number of CPUs); verification results are cached, so this bounds the registry requests in flight too")
}

// auditQPS and auditBurst let the audit list and write a large cluster in seconds (client-go's default is 5/s);
// the audit sends a few requests per namespace, never one per object.
const (
	auditQPS   = 200
	auditBurst = 400
)

// startAudit runs the background audit under leader election, when a cluster is configured and the interval is
// not 0. Every replica serves admissions; only the Lease holder audits.
func startAudit(ctx context.Context, g *errgroup.Group, o auditOptions, cfg *rest.Config, eval audit.Evaluator, current func() *config.Config,
	engine *policies.Engine, reg prometheus.Registerer, log *slog.Logger) error {
	if o.interval < 0 {
		return usageError(fmt.Errorf("--audit-interval must be 0 (off) or positive, got %s", o.interval))
	}
	if cfg == nil || o.interval == 0 {
		if o.interval != 0 {
			log.Info("no cluster configured: the background audit is off")
		}
		return nil
	}
	ns, name, err := leaseName(o.lease)
	if err != nil {
		return usageError(err)
	}
	metrics, err := audit.NewMetrics(reg)
	if err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst, cfg.UserAgent = auditQPS, auditBurst, "attest-audit"
	cfg.Wrap(metrics.RoundTripper)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("audit client: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("audit client: %w", err)
	}
	host, _ := os.Hostname()
	identity := host + "_" + string(uuid.NewUUID())
	log = log.With("component", "audit")
	a, err := audit.New(audit.Options{
		Source: audit.NewClusterSource(dyn, 0), Evaluator: eval, Config: current, Engine: engine,
		Sink: audit.NewClusterSink(dyn, identity), Observer: audit.NewDrafts(dyn, current, log), Workers: o.workers, SkipNamespaces: o.skip, Log: log,
	})
	if err != nil {
		return err
	}
	g.Go(func() error {
		return audit.Elect(ctx, client, audit.ElectOptions{Namespace: ns, Name: name, Identity: identity, Log: log}, func(ctx context.Context) {
			a.Loop(ctx, audit.LoopOptions{Interval: o.interval, Metrics: metrics})
		})
	})
	return nil
}

// leaseName reads --audit-lease, defaulting to the Pod's namespace (the Downward API's POD_NAMESPACE) or
// attest-system, and the name attest-audit.
func leaseName(s string) (namespace, name string, err error) {
	if s == "" {
		ns := os.Getenv("POD_NAMESPACE")
		if ns == "" {
			ns = "attest-system"
		}
		return ns, "attest-audit", nil
	}
	ns, n, ok := strings.Cut(s, "/")
	if !ok || ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("--audit-lease %q: want NAMESPACE/NAME", s)
	}
	return ns, n, nil
}
