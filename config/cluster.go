//go:build !lean

package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
	"github.com/continuums/attest/policies/cedar"
)

// ClusterResources keeps a Layered up to date from informers on Policy and PolicyConfig and writes each
// resource's status (valid, ready, message, effective parameters).
type ClusterResources struct {
	cache   cache.Cache
	client  client.Client
	layered *Layered
	log     *slog.Logger
	changed chan struct{}
	synced  atomic.Bool // the resources have been handed to the Layered once
	noCRDs  atomic.Bool // the last attempt to watch found the CRDs not installed
	// sources is set once PolicySources are watched (their CRD may be missing while the others are installed).
	sources atomic.Bool
	// crds is set once CustomResourceDefinitions are watched: their kinds are in the Cedar schema.
	crds atomic.Bool
	// crdKey identifies the CRDs last given to cedar.UseCustomKinds (only sync reads and writes it).
	crdKey string
	// resChanged is set by an event on a Policy, PolicyConfig or PolicySource: sync hands them over again.
	resChanged atomic.Bool
}

// NewClusterResources prepares the informers; Start runs them.
func NewClusterResources(cfg *rest.Config, layered *Layered, log *slog.Logger) (*ClusterResources, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// DefaultTransform, not ByObject: ByObject asks the API server for a RESTMapping here, and serve must start
	// while the API server is down. slimCRD leaves other objects as they are.
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: slimCRD})
	if err != nil {
		return nil, fmt.Errorf("policy resources cache: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("policy resources client: %w", err)
	}
	return &ClusterResources{cache: c, client: cl, layered: layered, log: log, changed: make(chan struct{}, 1)}, nil
}

// Start watches until ctx ends; while the CRDs are missing it retries every 10 s and the file config applies.
func (c *ClusterResources) Start(ctx context.Context) error {
	go func() {
		if err := c.cache.Start(ctx); err != nil {
			c.log.Error("policy resources cache stopped", "error", err.Error())
		}
	}()
	warned := false
	for {
		err := c.watch(ctx)
		if err == nil || ctx.Err() != nil {
			break
		}
		c.noCRDs.Store(meta.IsNoMatchError(err))
		if !warned {
			c.log.Warn("Policy and PolicyConfig resources are not available yet; retrying every 10s (the config file applies)", "error", err.Error())
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			c.sync(ctx)
		}
	}
}

// Synced reports whether the Policy and PolicyConfig resources are in the configuration (read once from synced
// informers, which keep them across a lost watch and relist when the API server answers again), or their CRDs are
// not installed and the file applies alone.
func (c *ClusterResources) Synced() error {
	if c.synced.Load() || c.noCRDs.Load() {
		return nil
	}
	return errors.New("policy resources: Policies and PolicyConfigs not synced yet")
}

func (c *ClusterResources) watch(ctx context.Context) error {
	changed := func() { c.resChanged.Store(true); c.poke() }
	notify := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}
	// A CRD event changes the configuration only when it changes the Cedar schema (syncCRDs decides).
	crdNotify := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
		DeleteFunc: func(any) { c.poke() },
	}
	for _, obj := range []client.Object{&v1alpha1.Policy{}, &v1alpha1.PolicyConfig{}} {
		inf, err := c.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(notify); err != nil {
			return err
		}
	}
	// PolicySources are watched when their CRD is installed; without it, the file's policySources apply alone.
	if inf, err := c.cache.GetInformer(ctx, &v1alpha1.PolicySource{}, cache.BlockUntilSynced(false)); err != nil {
		c.log.Warn("PolicySource resources are not available; the config file's policySources apply alone", "error", err.Error())
	} else if _, err := inf.AddEventHandler(notify); err != nil {
		return err
	} else {
		c.sources.Store(true)
	}
	// CustomResourceDefinitions: their kinds join the Cedar schema, so that Policies about them validate.
	if inf, err := c.cache.GetInformer(ctx, &apiextensionsv1.CustomResourceDefinition{}, cache.BlockUntilSynced(false)); err != nil {
		c.log.Warn("CustomResourceDefinitions are not available; Cedar policies can name built-in kinds only", "error", err.Error())
	} else if _, err := inf.AddEventHandler(crdNotify); err != nil {
		return err
	} else {
		c.crds.Store(true)
	}
	if !c.cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	c.log.Info("Policy and PolicyConfig resources are being watched")
	c.poke()
	return nil
}

func (c *ClusterResources) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// sync hands the resources to the Layered, recomputes, and writes statuses that changed.
func (c *ClusterResources) sync(ctx context.Context) {
	schemaChanged := c.syncCRDs(ctx)
	if !c.resChanged.Swap(false) && !schemaChanged && c.synced.Load() {
		return // a CRD event that left the Cedar schema as it was (status, a field it does not read)
	}
	handed := false
	defer func() {
		if !handed { // listing failed: the next event hands the resources over again
			c.resChanged.Store(true)
		}
	}()
	var pols v1alpha1.PolicyList
	var cfgs v1alpha1.PolicyConfigList
	if err := c.cache.List(ctx, &pols); err != nil {
		c.log.Error("list Policies", "error", err.Error())
		return
	}
	if err := c.cache.List(ctx, &cfgs); err != nil {
		c.log.Error("list PolicyConfigs", "error", err.Error())
		return
	}
	var srcs v1alpha1.PolicySourceList
	if c.sources.Load() {
		if err := c.cache.List(ctx, &srcs); err != nil {
			c.log.Error("list PolicySources", "error", err.Error())
			return
		}
	}
	c.layered.SetResources(Resources{Policies: pols.Items, Configs: cfgs.Items, Sources: srcs.Items})
	handed = true
	c.synced.Store(true)
	eff := c.layered.Current()
	if eff == nil {
		return
	}
	for i := range pols.Items {
		p := &pols.Items[i]
		st := eff.Resources["Policy/"+p.Name]
		want := v1alpha1.PolicyStatus{Valid: st.Valid, Ready: st.Valid, Message: st.Message, ObservedGeneration: p.Generation, EffectiveParameters: rawJSON(st.Effective)}
		if !st.Valid {
			c.log.Warn("Policy ignored", "policy", p.Name, "reason", st.Message)
		}
		if !reflect.DeepEqual(p.Status, want) {
			p.Status = want
			if err := c.client.Status().Update(ctx, p); err != nil {
				c.log.Warn("cannot write Policy status", "policy", p.Name, "error", err.Error())
			}
		}
	}
	for i := range cfgs.Items {
		pc := &cfgs.Items[i]
		st := eff.Resources["PolicyConfig/"+pc.Name]
		want := v1alpha1.PolicyConfigStatus{Valid: st.Valid, Message: st.Message}
		if !st.Valid {
			c.log.Warn("PolicyConfig ignored", "policyconfig", pc.Name, "reason", st.Message)
		}
		if !reflect.DeepEqual(pc.Status, want) {
			pc.Status = want
			if err := c.client.Status().Update(ctx, pc); err != nil {
				c.log.Warn("cannot write PolicyConfig status", "policyconfig", pc.Name, "error", err.Error())
			}
		}
	}
}

// syncCRDs gives the cluster's CustomResourceDefinitions to the Cedar schema when they changed (a served version,
// a schema: their generation), before the Policies are validated again against it. A CRD that cannot be
// converted is logged and left out; the built-in kinds and the other CRDs' stay. It reports whether the schema
// changed.
func (c *ClusterResources) syncCRDs(ctx context.Context) bool {
	if !c.crds.Load() {
		return false
	}
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := c.cache.List(ctx, &crds); err != nil {
		c.log.Error("list CustomResourceDefinitions", "error", err.Error())
		return false
	}
	keys := make([]string, 0, len(crds.Items))
	for _, crd := range crds.Items {
		keys = append(keys, crd.Name+"/"+string(crd.UID)+"/"+strconv.FormatInt(crd.Generation, 10))
	}
	slices.Sort(keys)
	key := fmt.Sprint(keys)
	if key == c.crdKey {
		return false
	}
	start := time.Now()
	skipped, err := cedar.UseCustomKinds(crds.Items)
	for _, s := range skipped {
		c.log.Warn("custom kind left out of the Cedar schema", "error", s.Error())
	}
	if err != nil {
		c.log.Error("the Cedar schema keeps the custom kinds it had", "error", err.Error())
		return false
	}
	c.crdKey = key
	c.log.Info("Cedar schema updated with the cluster's custom kinds", "crds", len(crds.Items), "skipped", len(skipped), "took", time.Since(start).String())
	return true
}

// slimCRD keeps of a cached CRD what the Cedar schema reads (names, group, versions and their schemas): the
// last-applied annotation, managed fields and status can be as large as the schema itself.
func slimCRD(obj any) (any, error) {
	if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok {
		crd.Annotations = nil
		crd.ManagedFields = nil
		crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	}
	return obj, nil
}

// SetSourceStatus writes a PolicySource's status when it changed: the syncer's view of its bundle, or why the
// source is not used at all (an invalid spec, a bundle refused for a name clash).
func (c *ClusterResources) SetSourceStatus(ctx context.Context, name string, set func(*v1alpha1.PolicySourceStatus)) {
	if !c.sources.Load() {
		return
	}
	var ps v1alpha1.PolicySource
	if err := c.cache.Get(ctx, client.ObjectKey{Name: name}, &ps); err != nil {
		return // deleted meanwhile, or from the file
	}
	want := *ps.Status.DeepCopy()
	set(&want)
	want.ObservedGeneration = ps.Generation
	if reflect.DeepEqual(ps.Status, want) {
		return
	}
	ps.Status = want
	if err := c.client.Status().Update(ctx, &ps); err != nil {
		c.log.Warn("cannot write PolicySource status", "policysource", name, "error", err.Error())
	}
}

func rawJSON(v map[string]any) *apiextensionsv1.JSON {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return &apiextensionsv1.JSON{Raw: b}
}
