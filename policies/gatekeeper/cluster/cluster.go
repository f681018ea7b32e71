// Package cluster runs Gatekeeper's resources from the cluster in ATTEST's webhook: it watches ConstraintTemplates,
// creates each template's constraint CRD (unless another owner, Gatekeeper itself, has it), watches the
// constraints of every such kind, ExpansionTemplates and the Config whose spec.sync.syncOnly fills data.inventory,
// and after each change publishes one gatekeeper.Set's policies (<Kind>/<name>) as a whole. It writes the status
// Gatekeeper users read (a template's created and per-pod errors, a constraint's enforced) on the resources whose
// CRDs it owns.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper"
)

// The resources the controller watches.
var (
	TemplatesGVR  = schema.GroupVersionResource{Group: gatekeeper.TemplateGroup, Version: "v1", Resource: "constrainttemplates"}
	ExpansionsGVR = schema.GroupVersionResource{Group: gatekeeper.ExpansionGroup, Version: "v1beta1", Resource: "expansiontemplate"} // Gatekeeper names the plural so
	ConfigsGVR    = schema.GroupVersionResource{Group: "config.gatekeeper.sh", Version: "v1alpha1", Resource: "configs"}
	crdGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// Ownership of a constraint CRD: ATTEST creates, changes and writes status for only the CRDs that carry this label
// (and an ownerReference to their template, so the garbage collector deletes them with it). A CRD without it
// belongs to someone else (Gatekeeper labels its own gatekeeper.sh/constraint: "yes"); ATTEST reads its
// constraints and never touches it.
const (
	OwnerLabel = "app.kubernetes.io/managed-by"
	OwnerValue = "attest"
)

// An Object is a Gatekeeper resource read from a file, named by file:line.
type Object struct {
	Obj    *unstructured.Unstructured
	Source string
}

// Options configure a Controller.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Templates, Constraints, Expansions and Inventory come from files (attest serve --gatekeeper) and join the
	// cluster's resources in every set.
	Templates, Constraints, Expansions, Inventory []Object
	// ExpandWorkloads adds ATTEST's opt-in ExpansionTemplates (every workload kind as its Pod).
	ExpandWorkloads bool
	// SyncConfig names the Config whose spec.sync.syncOnly selects the kinds synced into data.inventory
	// (Gatekeeper's is gatekeeper-system/config).
	SyncConfig types.NamespacedName
	// ID names this replica in status.byPod.
	ID string
	// Publish receives every new set of policies, replacing the previous one.
	Publish func([]*policies.Policy)
	// Debounce gathers the changes of a burst (default 100ms).
	Debounce time.Duration
	Log      *slog.Logger
}

// Controller keeps the webhook's Gatekeeper policies in step with the cluster.
type Controller struct {
	o       Options
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	trigger chan struct{}

	templates  cache.SharedIndexInformer
	expansions cache.SharedIndexInformer // nil when the cluster does not serve ExpansionTemplates
	configs    cache.SharedIndexInformer // nil when it does not serve Config

	mu     sync.Mutex // guards what follows; held by sync and by inventory updates
	set    *gatekeeper.Set
	kinds  map[string]*watch                  // constraint kind -> its informer
	synced map[schema.GroupVersionKind]*watch // data.inventory kinds -> informer
	errs   map[string]string                  // last problem per resource, for Problems
	ready  bool
}

type watch struct {
	inf  cache.SharedIndexInformer
	stop chan struct{}
}

// New builds a Controller; Start runs it.
func New(o Options) (*Controller, error) {
	if o.Config == nil || o.Publish == nil {
		return nil, errors.New("gatekeeper cluster: a rest config and Publish are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Debounce == 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.ID == "" {
		o.ID = "attest"
	}
	dyn, err := dynamic.NewForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("gatekeeper cluster: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("gatekeeper cluster: %w", err)
	}
	return &Controller{
		o: o, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		trigger: make(chan struct{}, 1), kinds: map[string]*watch{}, synced: map[schema.GroupVersionKind]*watch{},
		errs: map[string]string{},
	}, nil
}

// Start watches until ctx ends. ConstraintTemplates must be served (the overlay's CRD, or Gatekeeper's);
// ExpansionTemplates and Config are watched when served.
func (c *Controller) Start(ctx context.Context) error {
	if !c.served(TemplatesGVR) {
		return fmt.Errorf("gatekeeper cluster: the API server does not serve %s: apply manifests/overlays/gatekeeper (or install Gatekeeper)", TemplatesGVR.GroupResource())
	}
	c.templates = c.informer(TemplatesGVR, "", true)
	infs := []cache.SharedIndexInformer{c.templates}
	if c.served(ExpansionsGVR) {
		c.expansions = c.informer(ExpansionsGVR, "", true)
		infs = append(infs, c.expansions)
	} else {
		c.o.Log.Info("ExpansionTemplates are not served: not watched", "resource", ExpansionsGVR.String())
	}
	if c.served(ConfigsGVR) {
		c.configs = c.informer(ConfigsGVR, c.o.SyncConfig.Namespace, true)
		infs = append(infs, c.configs)
	}
	for _, inf := range infs {
		go inf.Run(ctx.Done())
	}
	for _, inf := range infs {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return ctx.Err()
		}
	}
	c.sync(ctx)
	defer c.stopAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.trigger:
		}
		select { // gather a burst
		case <-ctx.Done():
			return nil
		case <-time.After(c.o.Debounce):
		}
		c.sync(ctx)
	}
}

// Synced is nil once the first set is published.
func (c *Controller) Synced() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return errors.New("gatekeeper resources not synced yet")
	}
	return nil
}

// Problems are the last sync's errors, by resource ("ConstraintTemplate/<name>", "<Kind>/<name>").
func (c *Controller) Problems() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.errs))
	for k, v := range c.errs {
		out[k] = v
	}
	return out
}

func (c *Controller) served(gvr schema.GroupVersionResource) bool {
	_, err := c.mapper.KindFor(gvr)
	return err == nil
}

func (c *Controller) poke() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// informer watches gvr; with spec set, only a change of the spec (generation), labels or deletion triggers a
// sync, so the status ATTEST writes does not.
func (c *Controller) informer(gvr schema.GroupVersionResource, namespace string, spec bool) cache.SharedIndexInformer {
	inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, gvr, namespace, 10*time.Minute, cache.Indexers{}, nil).Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.poke() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*unstructured.Unstructured)
			n, ok2 := newObj.(*unstructured.Unstructured)
			if spec && ok1 && ok2 && o.GetGeneration() == n.GetGeneration() && labelsEqual(o.GetLabels(), n.GetLabels()) {
				return
			}
			c.poke()
		},
		DeleteFunc: func(any) { c.poke() },
	})
	return inf
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (c *Controller) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, w := range c.kinds {
		close(w.stop)
		delete(c.kinds, k)
	}
	for k, w := range c.synced {
		close(w.stop)
		delete(c.synced, k)
	}
}

// objects lists an informer's store, sorted by namespace/name so that a set is built the same way each time.
func objects(inf cache.SharedIndexInformer) []*unstructured.Unstructured {
	if inf == nil {
		return nil
	}
	var out []*unstructured.Unstructured
	for _, o := range inf.GetStore().List() {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}
