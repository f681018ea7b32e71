package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/webhook"
)

type serveOptions struct {
	host          string
	port          int
	certDir       string
	config        string
	mode          string
	budget        time.Duration
	failurePolicy string
	kubeconfig    string
	logLevel      string
}

func newServeCommand() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook over TLS",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), o, cmd.ErrOrStderr()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "address to listen on (default: all)")
	f.IntVar(&o.port, "port", 9443, "HTTPS port")
	f.StringVar(&o.certDir, "cert-dir", "/tls", "directory with tls.crt and tls.key (reloaded on change)")
	f.StringVar(&o.config, "config", "", "policies.yaml, reloaded on change (default: every policy as the library ships it)")
	f.StringVar(&o.mode, "mode", "", "audit: downgrade every enforced policy to audit (safe first install)")
	f.DurationVar(&o.budget, "budget", 8*time.Second, "time to answer one request; keep below the webhook's timeoutSeconds")
	f.StringVar(&o.failurePolicy, "failure-policy", "Fail", "answer when no decision is reached in time: Fail (refuse) or Ignore (admit with a warning)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for namespace labels (default: in-cluster when running in a Pod, else none)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError(fmt.Errorf("--log-level: %w", err))
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	tuneGC(serveGCPercent, serveMemoryLimit)
	mode, err := parseGlobalMode(o.mode)
	if err != nil {
		return usageError(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	engine, err := compileLibrary(ctx)
	if err != nil {
		return err
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
	eval, err := admission.New(admission.Options{Engine: engine, Config: current, Mode: mode})
	if err != nil {
		return err
	}
	namespaces, err := namespaceLookup(ctx, o.kubeconfig, log)
	if err != nil {
		return usageError(err)
	}
	validate, err := webhook.NewHandler(webhook.HandlerOptions{
		Decider: eval, Budget: o.budget, FailurePolicy: webhook.FailurePolicy(o.failurePolicy),
		Namespaces: namespaces, Metrics: metrics, Log: log,
	})
	if err != nil {
		return usageError(err)
	}
	mutate, err := webhook.NewHandler(webhook.HandlerOptions{Mutating: true, Budget: o.budget, Metrics: metrics, Log: log})
	if err != nil {
		return usageError(err)
	}
	srv, err := webhook.NewServer(webhook.ServerOptions{
		Host: o.host, Port: o.port, CertDir: o.certDir, Validate: validate, Mutate: mutate, Gatherer: reg,
		Ready: func() error {
			if current() == nil {
				return fmt.Errorf("no configuration loaded")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	log.Info("attest serving", "port", o.port, "policies", len(engine.Policies()), "config", o.config, "mode", string(mode))
	g.Go(func() error { return srv.Start(ctx) })
	return g.Wait()
}

// namespaceLookup builds the informer-backed namespace cache when a cluster is reachable.
func namespaceLookup(ctx context.Context, kubeconfig string, log *slog.Logger) (webhook.NamespaceLookup, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		log.Warn("no cluster configured: namespace labels are unknown, productionNamespaces.selector cannot match (names still do)")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return webhook.NewInformerNamespaces(ctx, client, 10*time.Minute), nil
}
