package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// ManagedOptions say where ATTEST keeps its own CA and serving certificate and which webhook configurations
// trust it.
type ManagedOptions struct {
	// Secret holds ca.crt, ca.key, tls.crt and tls.key; it must exist (the manifests ship it empty).
	Secret types.NamespacedName
	// Hosts are the serving certificate's DNS names; the first is the one checked for validity.
	Hosts []string
	// CertDir receives tls.crt, tls.key and ca.crt whenever the Secret changes, for the TLS server to reload.
	CertDir string
	// Webhooks are the names of the ValidatingWebhookConfiguration and MutatingWebhookConfiguration (each may
	// be empty) whose caBundle is kept equal to the CA.
	ValidatingWebhook, MutatingWebhook string
	// CAValidity and ServingValidity default to 10 years and 1 year; rotation happens LookAhead before expiry
	// (default 90 days) and is checked every CheckEvery (default 12 hours) and whenever the Secret changes.
	CAValidity, ServingValidity, LookAhead, CheckEvery time.Duration
	Log                                                *slog.Logger
}

// Managed rotates the CA and serving certificate with open-policy-agent/cert-controller (the rotator Gatekeeper
// runs), injects the CA into the webhook configurations, and mirrors the Secret into CertDir, so no kubelet
// Secret-volume delay stands between a rotation and the TLS server reloading it.
type Managed struct {
	o       ManagedOptions
	mgr     manager.Manager
	client  kubernetes.Interface
	written chan struct{}
	once    sync.Once
}

// NewManaged validates o and prepares the rotator; Start runs it.
func NewManaged(cfg *rest.Config, o ManagedOptions) (*Managed, error) {
	switch {
	case o.Secret.Namespace == "" || o.Secret.Name == "":
		return nil, errors.New("managed certificates: the Secret needs a namespace and a name")
	case len(o.Hosts) == 0:
		return nil, errors.New("managed certificates: at least one host name is required")
	case o.CertDir == "":
		return nil, errors.New("managed certificates: a certificate directory is required")
	case o.ValidatingWebhook == "" && o.MutatingWebhook == "":
		return nil, errors.New("managed certificates: name at least one webhook configuration to inject the CA into")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("managed certificates: %w", err)
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		return nil, fmt.Errorf("managed certificates: %w", err)
	}
	var hooks []rotator.WebhookInfo
	if o.ValidatingWebhook != "" {
		hooks = append(hooks, rotator.WebhookInfo{Name: o.ValidatingWebhook, Type: rotator.Validating})
	}
	if o.MutatingWebhook != "" {
		hooks = append(hooks, rotator.WebhookInfo{Name: o.MutatingWebhook, Type: rotator.Mutating})
	}
	err = rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:              o.Secret,
		CertDir:                o.CertDir,
		CAName:                 "attest-ca",
		CAOrganization:         "attest",
		DNSName:                o.Hosts[0],
		ExtraDNSNames:          o.Hosts[1:],
		IsReady:                make(chan struct{}),
		Webhooks:               hooks,
		FieldOwner:             "attest",
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.ServingValidity,
		LookaheadInterval:      o.LookAhead,
		RotationCheckFrequency: o.CheckEvery,
	})
	if err != nil {
		return nil, fmt.Errorf("managed certificates: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("managed certificates: %w", err)
	}
	return &Managed{o: o, mgr: mgr, client: client, written: make(chan struct{})}, nil
}

// Written is closed once a valid serving pair is in CertDir: start the TLS server after it.
func (m *Managed) Written() <-chan struct{} { return m.written }

// Start runs the rotator and the Secret mirror until ctx ends.
func (m *Managed) Start(ctx context.Context) error {
	errs := make(chan error, 2)
	go func() { errs <- m.mgr.Start(ctx) }()
	go func() { errs <- m.mirror(ctx) }()
	err := <-errs
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("managed certificates: %w", err)
}

// mirror writes the Secret's serving pair into CertDir on every change, watching only that one Secret.
func (m *Managed) mirror(ctx context.Context) error {
	selector := fields.OneTermEqualSelector("metadata.name", m.o.Secret.Name).String()
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return m.client.CoreV1().Secrets(m.o.Secret.Namespace).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return m.client.CoreV1().Secrets(m.o.Secret.Namespace).Watch(ctx, opts)
		},
	}
	informer := toolscache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
	var last []byte
	write := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		cert, key, ca := s.Data[CertFile], s.Data[KeyFile], s.Data[CAFile]
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			m.o.Log.Info("waiting for a serving certificate in the Secret", "secret", m.o.Secret.String(), "reason", err.Error())
			return
		}
		if bytes.Equal(last, cert) {
			return
		}
		if err := WriteDir(m.o.CertDir, KeyPair{CertPEM: cert, KeyPEM: key}, ca); err != nil {
			m.o.Log.Error("cannot write the serving certificate", "dir", m.o.CertDir, "error", err.Error())
			return
		}
		last = cert
		m.o.Log.Info("serving certificate written", "secret", m.o.Secret.String(), "dir", filepath.Clean(m.o.CertDir))
		m.once.Do(func() { close(m.written) })
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    write,
		UpdateFunc: func(_, obj any) { write(obj) },
	}); err != nil {
		return err
	}
	if err := os.MkdirAll(m.o.CertDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", m.o.CertDir, err)
	}
	informer.RunWithContext(ctx)
	return ctx.Err()
}
