package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/continuums/attest/policies/gatekeeper"
)

// templateState is what one sync made of a cluster ConstraintTemplate.
type templateState struct {
	u       *unstructured.Unstructured
	t       *gatekeeper.Template
	err     error
	owned   bool // ATTEST owns its constraint CRD
	created bool // the CRD exists and is established
}

// sync builds a new set from the files and the cluster's current resources, publishes its policies, and writes
// status. A resource that cannot be used is reported (status, log, Problems) and left out; the others still run.
func (c *Controller) sync(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := map[string]string{}
	set, err := gatekeeper.NewSet(gatekeeper.Options{EnforcementPoint: gatekeeper.EnforcementPointWebhook})
	if err != nil {
		c.o.Log.Error("gatekeeper: cannot build a set", "error", err)
		return
	}
	for _, o := range c.o.Templates {
		t, err := gatekeeper.TemplateFrom(o.Obj)
		if err == nil {
			err = set.AddTemplate(ctx, t, o.Source)
		}
		if err != nil {
			errs[o.Source] = err.Error()
		}
	}
	var states []*templateState
	kinds := map[string]bool{}
	owned := map[string]bool{} // constraint kinds whose CRD ATTEST owns
	for _, u := range objects(c.templates) {
		st := &templateState{u: u}
		states = append(states, st)
		st.t, st.err = gatekeeper.TemplateFrom(u)
		if st.err == nil {
			st.err = set.AddTemplate(ctx, st.t, "ConstraintTemplate/"+u.GetName())
		}
		if st.err != nil {
			errs["ConstraintTemplate/"+u.GetName()] = st.err.Error()
			continue
		}
		st.owned, st.created, st.err = c.ensureCRD(ctx, set, st)
		if st.err != nil {
			errs["ConstraintTemplate/"+u.GetName()] = st.err.Error()
			continue
		}
		owned[st.t.Kind()] = st.owned
		if st.created {
			kinds[st.t.Kind()] = true
		}
	}
	for _, o := range c.o.Templates {
		if t, err := gatekeeper.TemplateFrom(o.Obj); err == nil {
			kinds[t.Kind()] = true // a file's template may have cluster constraints too, when its CRD exists
		}
	}
	for _, o := range c.o.Expansions {
		if err := addExpansion(set, o.Obj, o.Source); err != nil {
			errs[o.Source] = err.Error()
		}
	}
	for _, u := range objects(c.expansions) {
		if err := addExpansion(set, u, "ExpansionTemplate/"+u.GetName()); err != nil {
			errs["ExpansionTemplate/"+u.GetName()] = err.Error()
		}
	}
	if c.o.ExpandWorkloads {
		if err := set.ExpandWorkloads(); err != nil {
			errs["--gatekeeper-expand-workloads"] = err.Error()
		}
	}
	for _, o := range c.o.Constraints {
		if err := addConstraint(ctx, set, o.Obj, o.Source); err != nil {
			errs[o.Source] = err.Error()
		}
	}
	c.watchKinds(ctx, kinds)
	type constraintState struct {
		u   *unstructured.Unstructured
		err error
	}
	var constraints []constraintState
	for _, kind := range sortedKeys(c.kinds) {
		w := c.kinds[kind]
		if !w.inf.HasSynced() {
			go func() { // its objects join the set once listed
				if cache.WaitForCacheSync(w.stop, w.inf.HasSynced) {
					c.poke()
				}
			}()
			continue
		}
		for _, u := range objects(w.inf) {
			err := addConstraint(ctx, set, u, u.GetKind()+"/"+u.GetName())
			if err != nil {
				errs[u.GetKind()+"/"+u.GetName()] = err.Error()
			}
			constraints = append(constraints, constraintState{u: u, err: err})
		}
	}
	for _, o := range c.o.Inventory {
		if err := set.AddInventory(ctx, o.Obj); err != nil {
			errs[o.Source] = err.Error()
		}
	}
	c.watchInventory(ctx)
	for _, w := range c.synced {
		for _, u := range objects(w.inf) {
			if err := set.AddInventory(ctx, u); err != nil {
				c.o.Log.Warn("gatekeeper: data.inventory", "error", err)
			}
		}
	}
	ps, err := set.Policies()
	if err != nil {
		c.o.Log.Error("gatekeeper: the set's policies", "error", err)
		return
	}
	c.set = set
	c.o.Publish(ps)
	first := !c.ready
	c.ready = true
	c.errs = errs
	for k, v := range errs {
		c.o.Log.Warn("gatekeeper: resource not enforced", "resource", k, "error", v)
	}
	if first {
		c.o.Log.Info("gatekeeper resources synced", "constraints", set.Constraints(), "templates", len(states))
	}
	for _, st := range states {
		c.templateStatus(ctx, st)
	}
	for _, k := range constraints {
		if owned[k.u.GetKind()] {
			c.constraintStatus(ctx, k.u, k.err)
		}
	}
}

func addExpansion(set *gatekeeper.Set, u *unstructured.Unstructured, source string) error {
	e, err := gatekeeper.ExpansionTemplateFrom(u)
	if err != nil {
		return err
	}
	return set.AddExpansionTemplate(e, source)
}

func addConstraint(ctx context.Context, set *gatekeeper.Set, u *unstructured.Unstructured, source string) error {
	k, err := gatekeeper.ConstraintFrom(u)
	if err != nil {
		return err
	}
	return set.AddConstraint(ctx, k, source)
}

// ensureCRD creates the template's constraint CRD, or brings the one ATTEST owns up to date; a CRD that
// someone else owns is left as it is and only read. created: the CRD exists and is established.
func (c *Controller) ensureCRD(ctx context.Context, set *gatekeeper.Set, st *templateState) (owned, created bool, err error) {
	want, err := set.CRD(ctx, st.t)
	if err != nil {
		return false, false, err
	}
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	want.Labels[OwnerLabel] = OwnerValue
	want.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: st.u.GetAPIVersion(), Kind: st.u.GetKind(), Name: st.u.GetName(), UID: st.u.GetUID(),
	}}
	crds := c.dyn.Resource(crdGVR)
	cur, err := crds.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj, err := toUnstructured(want)
		if err != nil {
			return false, false, err
		}
		if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return true, false, fmt.Errorf("create the constraint CRD %s: %w", want.Name, err)
		}
		c.o.Log.Info("gatekeeper: constraint CRD created", "crd", want.Name, "template", st.u.GetName())
		c.retryLater() // established in a moment
		return true, false, nil
	case err != nil:
		return false, false, fmt.Errorf("read the constraint CRD %s: %w", want.Name, err)
	}
	if cur.GetLabels()[OwnerLabel] != OwnerValue {
		return false, established(cur), nil // Gatekeeper's (or another owner's): read, never changed
	}
	var have apiextensionsv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(cur.Object, &have); err != nil {
		return true, false, fmt.Errorf("read the constraint CRD %s: %w", want.Name, err)
	}
	if !sameCRD(&have, want) {
		want.ResourceVersion = have.ResourceVersion
		obj, err := toUnstructured(want)
		if err != nil {
			return true, false, err
		}
		if _, err := crds.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
			return true, false, fmt.Errorf("update the constraint CRD %s: %w", want.Name, err)
		}
		c.o.Log.Info("gatekeeper: constraint CRD updated", "crd", want.Name, "template", st.u.GetName())
	}
	if !established(cur) {
		c.retryLater()
		return true, false, nil
	}
	return true, true, nil
}

// sameCRD compares what ATTEST sets: the spec as the API server defaulted it would differ in defaults only,
// so the schema, names and versions are compared through their JSON.
func sameCRD(have, want *apiextensionsv1.CustomResourceDefinition) bool {
	if have.Spec.Group != want.Spec.Group || have.Spec.Names.Kind != want.Spec.Names.Kind || len(have.Spec.Versions) != len(want.Spec.Versions) {
		return false
	}
	for i := range want.Spec.Versions {
		h, w := have.Spec.Versions[i], want.Spec.Versions[i]
		if h.Name != w.Name || !jsonEqual(h.Schema, w.Schema) {
			return false
		}
	}
	return jsonEqual(have.Spec.Names.ShortNames, want.Spec.Names.ShortNames)
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == string(apiextensionsv1.Established) && m["status"] == "True" {
			return true
		}
	}
	return false
}

func (c *Controller) retryLater() {
	go func() {
		time.Sleep(300 * time.Millisecond)
		c.poke()
	}()
}

// othersCRD reports whether the CRD of a template's kind exists and belongs to someone else: then its template's
// status is theirs to write.
func (c *Controller) othersCRD(ctx context.Context, u *unstructured.Unstructured) bool {
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "crd", "spec", "names", "kind")
	if kind == "" {
		return false
	}
	crd, err := c.dyn.Resource(crdGVR).Get(ctx, strings.ToLower(kind)+"."+gatekeeper.ConstraintGroup, metav1.GetOptions{})
	return err == nil && crd.GetLabels()[OwnerLabel] != OwnerValue
}

// watchKinds runs one informer per constraint kind with an established CRD and stops those of kinds gone.
func (c *Controller) watchKinds(_ context.Context, kinds map[string]bool) {
	for kind, w := range c.kinds {
		if !kinds[kind] {
			close(w.stop)
			delete(c.kinds, kind)
		}
	}
	for kind := range kinds {
		if _, ok := c.kinds[kind]; ok {
			continue
		}
		gvr := schema.GroupVersionResource{Group: gatekeeper.ConstraintGroup, Version: "v1beta1", Resource: strings.ToLower(kind)}
		w := &watch{inf: c.informer(gvr, "", true), stop: make(chan struct{})}
		c.kinds[kind] = w
		go w.inf.Run(w.stop)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
