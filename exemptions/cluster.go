//go:build !lean

package exemptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
)

// ownerKinds are the controllers whose objects inherit an exemption, watched as metadata only (name, UID,
// labels, ownerReferences): a fraction of the memory of full objects.
var ownerKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
	{Group: "", Version: "v1", Kind: "ReplicationController"},
}

// ErrNoExceptionsYet means the PolicyException CRD is not installed (or its cache not synced): no exception
// applies, annotation exemptions still do, and the webhook stays ready.
var ErrNoExceptionsYet = errors.New("PolicyExceptions are not available: the CRD policyexceptions.policy.attest.continuu.ms is not installed or not yet synced")

// Cluster is the Lookup over a controller-runtime cache: PolicyExceptions and owners are read from informers,
// never with a per-request API call.
type Cluster struct {
	cache     cache.Cache
	log       *slog.Logger
	clock     clock.PassiveClock
	available atomic.Bool
	noCRD     atomic.Bool                      // the PolicyException CRD is not installed (last seen)
	owners    atomic.Pointer[[]cache.Informer] // set once every owner kind is watched
	gov       func() *Governance
}

var _ Lookup = (*Cluster)(nil)

// NewCluster prepares the cache; Start runs it. gov gives the current governance (for the metrics of active
// exemptions); reg receives the metrics.
func NewCluster(cfg *rest.Config, reg prometheus.Registerer, gov func() *Governance, log *slog.Logger) (*Cluster, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ReaderFailOnMissingInformer: true})
	if err != nil {
		return nil, fmt.Errorf("exemptions cache: %w", err)
	}
	cl := &Cluster{cache: c, log: log, clock: clock.RealClock{}, gov: gov}
	if reg != nil {
		if err := reg.Register(cl); err != nil {
			return nil, fmt.Errorf("exemptions metrics: %w", err)
		}
	}
	return cl, nil
}

// Start runs the informers until ctx ends. Owner informers are created as soon as the API server answers
// (retried every 2 s while it does not, so a replica started while it is down waits instead of exiting); the
// PolicyException informer is retried every 10 s until its CRD exists, so installing the CRD later needs no restart.
func (c *Cluster) Start(ctx context.Context) error {
	go c.watch(ctx)
	return c.cache.Start(ctx)
}

func (c *Cluster) watch(ctx context.Context) {
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	owners := make([]cache.Informer, 0, len(ownerKinds))
	warned := false
	for len(owners) < len(ownerKinds) {
		inf, err := c.cache.GetInformer(ctx, metadataOf(ownerKinds[len(owners)]), cache.BlockUntilSynced(false))
		if err == nil {
			owners = append(owners, inf)
			continue
		}
		if !warned {
			c.log.Warn("cannot watch owners yet; retrying every 2s", "kind", ownerKinds[len(owners)].Kind, "error", err.Error())
			warned = true
		}
		if !wait(2 * time.Second) {
			return
		}
	}
	c.owners.Store(&owners)
	warned = false
	for {
		_, err := c.cache.GetInformer(ctx, &v1alpha1.PolicyException{}, cache.BlockUntilSynced(false))
		if err == nil {
			if c.cache.WaitForCacheSync(ctx) {
				c.available.Store(true)
				c.log.Info("PolicyExceptions are being watched")
			}
			return
		}
		c.noCRD.Store(meta.IsNoMatchError(err))
		if !warned {
			c.log.Warn("PolicyExceptions are not available yet; retrying every 10s (annotation exemptions still apply)", "error", err.Error())
			warned = true
		}
		if !wait(10 * time.Second) {
			return
		}
	}
}

// Synced reports what is not filled yet: the owners' informers, and the PolicyExceptions' unless their CRD is not
// installed (then no exception applies, as ErrNoExceptionsYet says, and the webhook may be ready without them).
// An informer stays synced once it has been: across a lost watch it keeps its objects and relists when the API
// server answers again.
func (c *Cluster) Synced() error {
	owners := c.owners.Load()
	if owners == nil {
		return errors.New("exemptions: owners (Deployments, ReplicaSets, ...) are not watched yet")
	}
	for i, inf := range *owners {
		if !inf.HasSynced() {
			return fmt.Errorf("exemptions: %s metadata not synced yet", ownerKinds[i].Kind)
		}
	}
	if !c.available.Load() && !c.noCRD.Load() {
		return errors.New("exemptions: PolicyExceptions not synced yet")
	}
	return nil
}

// Exceptions implements Lookup.
func (c *Cluster) Exceptions(ctx context.Context, namespace string) ([]v1alpha1.PolicyException, error) {
	if !c.available.Load() {
		return nil, ErrNoExceptionsYet
	}
	var list v1alpha1.PolicyExceptionList
	if err := c.cache.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list PolicyExceptions in %s: %w", namespace, err)
	}
	return list.Items, nil
}

// Owner implements Lookup; kinds that are not controllers ATTEST follows have no owner.
func (c *Cluster) Owner(ctx context.Context, namespace string, ref metav1.OwnerReference) (*metav1.PartialObjectMetadata, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, nil
	}
	for _, gvk := range ownerKinds {
		if gvk.Group == gv.Group && gvk.Kind == ref.Kind {
			obj := metadataOf(gvk)
			if err := c.cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, obj); err != nil {
				return nil, client.IgnoreNotFound(err)
			}
			return obj, nil
		}
	}
	return nil, nil
}

func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	return obj
}

var (
	activeDesc = prometheus.NewDesc("attest_exemptions_active", "PolicyExceptions approved and not expired, by policy they waive.", []string{"policy"}, nil)
	expiryDesc = prometheus.NewDesc("attest_exemption_expiry_timestamp_seconds", "When each PolicyException expires (Unix seconds).", []string{"namespace", "name"}, nil)
	availDesc  = prometheus.NewDesc("attest_exemptions_available", "1 when PolicyExceptions are watched, 0 while their CRD is missing.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeDesc
	ch <- expiryDesc
	ch <- availDesc
}

// Collect reads the cache at scrape time, so the gauges can never drift from the exceptions.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {
	if !c.available.Load() {
		ch <- prometheus.MustNewConstMetric(availDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(availDesc, prometheus.GaugeValue, 1)
	var list v1alpha1.PolicyExceptionList
	if err := c.cache.List(context.Background(), &list); err != nil {
		return
	}
	now := c.clock.Now()
	active := map[string]int{}
	g := c.gov()
	for i := range list.Items {
		pe := &list.Items[i]
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(pe.Spec.ExpiresAt.Unix()), pe.Namespace, pe.Name)
		if g == nil || !pe.Spec.ExpiresAt.After(now) {
			continue
		}
		if valid, required := Approvals(g, pe); valid >= required {
			for _, p := range pe.Spec.Policies {
				active[p]++
			}
		}
	}
	for p, n := range active {
		ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(n), p)
	}
}
