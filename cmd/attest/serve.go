//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/certs"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/exemptions"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/cedar"
	"github.com/continuums/attest/rulesync"
	"github.com/continuums/attest/webhook"
)

type serveOptions struct {
	host          string
	port          int
	tlsMinVersion string
	enableHTTP2   bool
	metricsAddr   string
	probeAddr     string
	pprofAddr     string
	certDir       string
	config        string
	mode          string
	budget        time.Duration
	failurePolicy string
	kubeconfig    string
	logLevel      string
	logInputs     bool
	certSecret    string
	certHosts     []string
	webhookName   string
	manageRules   bool
	verify        verifyOptions
	gatekeeper    gatekeeperServeOptions
	audit         auditOptions
	tracing       tracingOptions
}

func newServeCommand() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: fullShort["serve"],
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), o, cmd.ErrOrStderr()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "address to listen on (default: all)")
	f.IntVar(&o.port, "port", 9443, "HTTPS port of the webhook; it serves /validate, /mutate, /validate-policy-resources and /mutate-policy-resources only")
	f.StringVar(&o.tlsMinVersion, "tls-min-version", "1.2", "lowest TLS version the webhook port accepts: 1.2 or 1.3 (cipher suites are Go's defaults)")
	f.BoolVar(&o.enableHTTP2, "enable-http2", false, "offer HTTP/2 on the webhook port; off by default since HTTP/2 Rapid Reset (CVE-2023-44487), as controller-runtime advises")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "HOST:PORT of /metrics over plain HTTP, apart from the webhook port; 0 disables it")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "HOST:PORT of /healthz and /readyz over plain HTTP, apart from the webhook port; 0 disables them")
	f.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "HOST:PORT of Go's runtime profiles (/debug/pprof/) over plain HTTP, for diagnosing memory and latency; 0 (the default) disables them; bind it to loopback")
	f.StringVar(&o.certDir, "cert-dir", "/tls", "directory with tls.crt and tls.key (reloaded on change)")
	f.StringVar(&o.config, "config", "", "policies.yaml, reloaded on change (default: every policy as the library ships it)")
	f.StringVar(&o.mode, "mode", "", "audit: downgrade every enforced policy to audit (safe first install)")
	f.DurationVar(&o.budget, "budget", 8*time.Second, "time to answer one request; keep below the webhook's timeoutSeconds")
	f.StringVar(&o.failurePolicy, "failure-policy", "Fail", "answer when no decision is reached in time: Fail (refuse) or Ignore (admit with a warning)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for namespace labels (default: in-cluster when running in a Pod, else none)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&o.logInputs, "log-inputs", false, "record each request's input (Secret-like values redacted, 64 KiB cap) in the decision log, for attest policy replay; without it only evaluations a policy's sample rule selects are recorded")
	f.StringVar(&o.certSecret, "cert-secret", "", "NAMESPACE/NAME: ATTEST keeps its own CA and serving certificate in this Secret, rotates them, injects the CA into the webhook configurations and writes the pair into --cert-dir (empty: the files in --cert-dir come from elsewhere, e.g. cert-manager)")
	f.StringSliceVar(&o.certHosts, "cert-hosts", nil, "DNS names of the managed serving certificate (default: the attest Service in the Secret's namespace)")
	f.StringVar(&o.webhookName, "webhook-configuration", "attest", "name of the Validating- and MutatingWebhookConfiguration whose caBundle --cert-secret keeps current")
	f.BoolVar(&o.manageRules, "manage-webhook-rules", true, "keep the validating webhook's operations in step with the policies: DELETE and CONNECT are sent to ATTEST only while a policy judges them")
	o.verify.addFlags(f)
	o.gatekeeper.addFlags(f)
	o.audit.addFlags(f)
	o.tracing.addFlags(f)
	return cmd
}

func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError(fmt.Errorf("--log-level: %w", err))
	}
	// The decision log's line per admission is written in batches, off the admission's path (webhook.LogWriter).
	logOut := webhook.NewLogWriter(stderr)
	defer func() { _ = logOut.Close() }()
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	// controller-runtime (certificate watcher and rotation) logs through the same handler.
	crlog.SetLogger(logr.FromSlogHandler(log.Handler()))
	tuneGC(webhook.GCPercent, webhook.MemoryLimit)
	if o.pprofAddr == "" || o.pprofAddr == "0" {
		// No one can read a heap profile: its sampled stacks (1.5 MiB after a busy hour) would count against the
		// memory limit and bring the collections nearer.
		runtime.MemProfileRate = 0
	}
	mode, err := parseGlobalMode(o.mode)
	if err != nil {
		return usageError(err)
	}
	tlsMin, err := webhook.TLSVersion(o.tlsMinVersion)
	if err != nil {
		return usageError(fmt.Errorf("--tls-min-version: %w", err))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	engine, err := compileLibrary(ctx)
	if err != nil {
		return err
	}
	if engine, err = o.gatekeeper.withPolicies(ctx, engine); err != nil {
		return usageError(err)
	}
	restConfig, err := clusterConfig(o.kubeconfig)
	if err != nil {
		return usageError(err)
	}
	if restConfig != nil && o.config != "" {
		// The cluster's custom kinds before the config file's .cedar files are validated (the CRD informer keeps
		// them current afterwards); without them, a file about a custom kind would not load.
		preloadCRDs(ctx, restConfig, log)
	}
	g, ctx := errgroup.WithContext(ctx)
	var current func() *config.Config
	if o.config == "" {
		current = cfgFunc(config.Default(engine))
	} else {
		w, err := config.NewWatcher(o.config, engine, log, reg)
		if err != nil {
			return usageError(err)
		}
		current = w.Current
		g.Go(func() error { return w.Run(ctx) })
	}
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return err
	}
	// Policy and PolicyConfig resources layer over the file: defaults < file < Policy < PolicyConfig.
	lib, _, err := policies.Library()
	if err != nil {
		return err
	}
	layered := config.NewLayered(current, lib)
	current = layered.Current
	var synced []func() error // each cluster cache: nil once filled; /readyz fails until all are
	current, gkResources, gkSynced, err := o.gatekeeper.watchCluster(g, ctx, restConfig, current, log)
	if err != nil {
		return usageError(err)
	}
	if gkSynced != nil {
		synced = append(synced, gkSynced)
	}
	var resources *config.ClusterResources
	if restConfig != nil {
		if resources, err = config.NewClusterResources(restConfig, layered, log.With("component", "policy-resources")); err != nil {
			return err
		}
		g.Go(func() error { return resources.Start(ctx) })
		synced = append(synced, resources.Synced)
	}
	if err := startPolicySources(ctx, g, layered, lib, reg, restConfig, resources, log.With("component", "policy-sources")); err != nil {
		return err
	}
	var lookup exemptions.Lookup
	if restConfig != nil {
		cluster, err := exemptions.NewCluster(restConfig, reg, func() *exemptions.Governance {
			if c := current(); c != nil {
				return c.Governance
			}
			return nil
		}, log.With("component", "exemptions"))
		if err != nil {
			return err
		}
		g.Go(func() error { return cluster.Start(ctx) })
		lookup = cluster
		synced = append(synced, cluster.Synced)
	}
	verifier, keychain, err := imageVerification(o.verify, reg, restConfig, log.With("component", "verification"))
	if err != nil {
		return usageError(err)
	}
	tracer, flushTraces, err := o.tracing.tracer(ctx, log)
	if err != nil {
		return usageError(err)
	}
	defer flushTraces()
	eval, err := admission.New(admission.Options{Verifier: verifier, Keychain: keychain, Engine: engine, Config: current, Mode: mode, Exemptions: lookup, Library: lib, Tracer: tracer, Resources: gkResources})
	if err != nil {
		return err
	}
	if err := startAudit(ctx, g, o.audit, restConfig, eval, current, engine, reg, log); err != nil {
		return err
	}
	namespaces, err := namespaceLookup(ctx, restConfig, log)
	if err != nil {
		return err
	}
	if n, ok := namespaces.(*webhook.InformerNamespaces); ok {
		synced = append(synced, func() error {
			if !n.Synced() {
				return fmt.Errorf("namespace cache not synced yet")
			}
			return nil
		})
	}
	certsWritten, err := manageCerts(ctx, g, o, restConfig, log)
	if err != nil {
		return err
	}
	if restConfig != nil && o.manageRules {
		syncer, err := webhookRules(restConfig, o.webhookName, func() (map[string][]string, []string) {
			if c := current(); c != nil {
				return c.OperationKinds(engine), c.WriteKinds(engine)
			}
			return nil, nil
		}, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return syncer.Run(ctx) })
	}
	validate, err := webhook.NewHandler(webhook.HandlerOptions{
		Decider: eval, Budget: o.budget, FailurePolicy: webhook.FailurePolicy(o.failurePolicy),
		Namespaces: namespaces, Metrics: metrics, Log: log, DecisionLog: logOut, LogInputs: o.logInputs, Tracer: tracer,
	})
	if err != nil {
		return usageError(err)
	}
	mutate, err := webhook.NewHandler(webhook.HandlerOptions{Mutating: true, Decider: eval, Budget: o.budget, Metrics: metrics, Log: log, Tracer: tracer})
	if err != nil {
		return usageError(err)
	}
	srv, err := webhook.NewServer(webhook.ServerOptions{
		Host: o.host, Port: o.port, CertDir: o.certDir, CertificatesWritten: certsWritten,
		TLSMinVersion: tlsMin, EnableHTTP2: o.enableHTTP2, Validate: validate, Mutate: mutate,
		MetricsBindAddress: o.metricsAddr, Gatherer: reg, HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress: o.pprofAddr,
		Ready: func() error {
			if current() == nil {
				return fmt.Errorf("no configuration loaded")
			}
			var errs []error
			for _, s := range synced {
				if err := s(); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	})
	if err != nil {
		return usageError(err)
	}
	// Metrics and probes serve at once (/readyz says not ready until the webhook port is up); the webhook port
	// opens once --cert-dir holds a serving pair.
	g.Go(func() error { return srv.Start(ctx) })
	g.Go(func() error { releaseStartupPages(ctx, srv, log); return nil })
	g.Go(func() error {
		select {
		case <-certsWritten:
			log.Info("attest serving", "port", o.port, "tls_min_version", o.tlsMinVersion, "http2", o.enableHTTP2,
				"metrics", o.metricsAddr, "health_probes", o.probeAddr,
				"policies", len(engine.Policies()), "config", o.config, "mode", string(mode))
		case <-ctx.Done():
		}
		return nil
	})
	return g.Wait()
}

// manageCerts starts certificate rotation when --cert-secret asks for it; the returned channel is closed once
// --cert-dir holds a serving pair (at once when certificates come from elsewhere).
func manageCerts(ctx context.Context, g *errgroup.Group, o serveOptions, cfg *rest.Config, log *slog.Logger) (<-chan struct{}, error) {
	if o.certSecret == "" {
		done := make(chan struct{})
		close(done)
		return done, nil
	}
	ns, name, ok := strings.Cut(o.certSecret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, usageError(fmt.Errorf("--cert-secret %q: want NAMESPACE/NAME", o.certSecret))
	}
	if cfg == nil {
		return nil, usageError(fmt.Errorf("--cert-secret needs a cluster: run in a Pod or pass --kubeconfig"))
	}
	hosts := o.certHosts
	if len(hosts) == 0 {
		hosts = certs.ServiceHosts("attest", ns)
	}
	m, err := certs.NewManaged(cfg, certs.ManagedOptions{
		Secret: types.NamespacedName{Namespace: ns, Name: name}, Hosts: hosts, CertDir: o.certDir,
		ValidatingWebhook: o.webhookName, MutatingWebhook: o.webhookName, Log: log.With("component", "certs"),
	})
	if err != nil {
		return nil, usageError(err)
	}
	g.Go(func() error { return m.Start(ctx) })
	return m.Written(), nil
}

// webhookRules keeps the rules of configuration's validating webhooks in step with the policies' needs (kinds
// returns, for each operation, the kinds the policies judge it for, and the kinds beyond the workloads whose writes
// they judge): attest.continuu.ms's operations, and kinds.attest.continuu.ms's rules; resources found by discovery,
// read again (at most every 10 s) while a kind is not found, as for a CRD created after its policy.
func webhookRules(cfg *rest.Config, configuration string, kinds func() (map[string][]string, []string), log *slog.Logger) (*rulesync.Syncer, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	// Read again (at most every 10 s) when a kind is not found: a CRD created after its policy, for the DELETE
	// rules (Needed) and kinds.attest.continuu.ms's rules (Writes) alike.
	mapper := &refreshingMapper{DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery())), every: 10 * time.Second}
	return rulesync.New(rulesync.Options{Client: client, Configuration: configuration, Webhook: "attest.continuu.ms", WritesWebhook: "kinds.attest.continuu.ms",
		Needed: func() []string {
			opKinds, _ := kinds()
			return rulesync.Needs(opKinds, mapper)
		},
		Writes: func() []string {
			_, writeKinds := kinds()
			return rulesync.Resources(writeKinds, mapper)
		},
		Log: log.With("component", "webhook-rules")})
}

// preloadCRDs gives the cluster's CRDs to the Cedar schema once, waiting at most 10 s; a failure is logged and
// the file's policies about custom kinds, if any, then fail to load as they would without a cluster.
func preloadCRDs(ctx context.Context, cfg *rest.Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	crds, err := listCRDs(ctx, cfg)
	if err != nil {
		log.Warn("cannot read the cluster's CustomResourceDefinitions before loading the config file", "error", err.Error())
		return
	}
	skipped, err := cedar.UseCustomKinds(crds)
	for _, s := range skipped {
		log.Warn("custom kind left out of the Cedar schema", "error", s.Error())
	}
	if err != nil {
		log.Error("the Cedar schema has the built-in kinds only", "error", err.Error())
	}
}

// refreshingMapper reads discovery again when it does not know a kind (a CRD created since it was read: a Cedar
// policy about a custom kind must get its DELETE rule), at most once per every.
type refreshingMapper struct {
	*restmapper.DeferredDiscoveryRESTMapper
	every time.Duration
	mu    sync.Mutex
	last  time.Time
}

func (m *refreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	mapping, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if err == nil || !meta.IsNoMatchError(err) {
		return mapping, err
	}
	m.mu.Lock()
	stale := time.Since(m.last) >= m.every
	if stale {
		m.last = time.Now()
	}
	m.mu.Unlock()
	if !stale {
		return nil, err
	}
	m.Reset()
	return m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
}

// clusterConfig finds the cluster: --kubeconfig, else in-cluster when running in a Pod, else none (nil).
func clusterConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	return cfg, nil
}

// namespaceLookup builds the informer-backed namespace cache when a cluster is reachable.
func namespaceLookup(ctx context.Context, cfg *rest.Config, log *slog.Logger) (webhook.NamespaceLookup, error) {
	if cfg == nil {
		log.Warn("no cluster configured: namespace labels are unknown, productionNamespaces.selector cannot match (names still do)")
		return nil, nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return webhook.NewInformerNamespaces(ctx, client, 10*time.Minute), nil
}

// releaseStartupPages waits until the server is ready (configuration loaded, caches filled, certificates written),
// then lets go of the binary's pages that start-up mapped (webhook.ReleaseStartupPages).
func releaseStartupPages(ctx context.Context, srv *webhook.Server, log *slog.Logger) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for srv.Ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	before, after, err := webhook.ReleaseStartupPages()
	if err != nil {
		log.Warn("could not release start-up pages", "error", err)
		return
	}
	log.Info("released start-up pages of the binary", "resident_before_mib", before>>20, "resident_after_mib", after>>20)
}
