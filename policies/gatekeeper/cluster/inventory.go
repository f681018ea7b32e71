package cluster

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// syncOnly reads spec.sync.syncOnly of the Config the controller follows: the kinds Gatekeeper syncs into
// data.inventory.
func (c *Controller) syncOnly() []schema.GroupVersionKind {
	if c.configs == nil {
		return nil
	}
	o, ok, err := c.configs.GetStore().GetByKey(c.o.SyncConfig.Namespace + "/" + c.o.SyncConfig.Name)
	if err != nil || !ok {
		return nil
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	entries, _, _ := unstructured.NestedSlice(u.Object, "spec", "sync", "syncOnly")
	var out []schema.GroupVersionKind
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, schema.GroupVersionKind{Group: g, Version: v, Kind: k})
		}
	}
	return out
}

// watchInventory runs one informer per synced kind (and stops those no longer listed). Their objects reach the
// live set as they change (AddInventory and RemoveInventory are safe while it reviews), and every new set is
// filled from their stores. A kind the API server does not serve is logged and skipped.
func (c *Controller) watchInventory(_ context.Context) {
	want := map[schema.GroupVersionKind]bool{}
	for _, gvk := range c.syncOnly() {
		want[gvk] = true
	}
	for gvk, w := range c.synced {
		if !want[gvk] {
			close(w.stop)
			delete(c.synced, gvk)
		}
	}
	for gvk := range want {
		if _, ok := c.synced[gvk]; ok {
			continue
		}
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			c.mapper.Reset()
			c.o.Log.Warn("gatekeeper: a syncOnly kind is not served", "kind", gvk.String(), "error", err)
			continue
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, m.Resource, "", 10*time.Minute, cache.Indexers{}, nil).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.inventory(o, false) },
			UpdateFunc: func(_, o any) { c.inventory(o, false) },
			DeleteFunc: func(o any) { c.inventory(o, true) },
		})
		w := &watch{inf: inf, stop: make(chan struct{})}
		c.synced[gvk] = w
		go inf.Run(w.stop)
	}
}

// inventory applies one change of a synced object to the live set.
func (c *Controller) inventory(o any, remove bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		return
	}
	ctx := context.Background()
	var err error
	if remove {
		err = c.set.RemoveInventory(ctx, u)
	} else {
		err = c.set.AddInventory(ctx, u)
	}
	if err != nil {
		c.o.Log.Warn("gatekeeper: data.inventory", "error", err)
	}
}
