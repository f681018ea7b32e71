package cluster

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// templateStatus writes Gatekeeper's ConstraintTemplate status: created (the constraint CRD exists) and this
// replica's entry of byPod (observedGeneration, templateUID, operations, errors with the compiler's message,
// which names the line). Other replicas' entries are kept. Nothing is written when another owner has the CRD
// (Gatekeeper writes its template's status) or when nothing changed.
func (c *Controller) templateStatus(ctx context.Context, st *templateState) {
	if !st.owned && c.othersCRD(ctx, st.u) {
		return
	}
	entry := map[string]any{
		"id": c.o.ID, "observedGeneration": st.u.GetGeneration(), "templateUID": string(st.u.GetUID()),
		"operations": []any{"webhook"},
	}
	if st.err != nil {
		entry["errors"] = []any{map[string]any{"code": "ingest_error", "message": st.err.Error()}}
	}
	status := map[string]any{"created": st.created, "byPod": byPod(st.u, c.o.ID, entry)}
	c.writeStatus(ctx, TemplatesGVR, st.u, status)
}

// constraintStatus writes this replica's entry of a constraint's status.byPod, as Gatekeeper's: enforced, with
// the error that keeps it from being enforced.
func (c *Controller) constraintStatus(ctx context.Context, u *unstructured.Unstructured, err error) {
	entry := map[string]any{
		"id": c.o.ID, "observedGeneration": u.GetGeneration(), "constraintUID": string(u.GetUID()),
		"operations": []any{"webhook"}, "enforced": err == nil,
	}
	if err != nil {
		entry["errors"] = []any{map[string]any{"code": "ingest_error", "message": err.Error()}}
	}
	status := map[string]any{}
	if old, ok := u.Object["status"].(map[string]any); ok {
		for k, v := range old {
			status[k] = v // totalViolations, auditTimestamp, ... of whoever audits
		}
	}
	status["byPod"] = byPod(u, c.o.ID, entry)
	gvr := schema.GroupVersionResource{Group: u.GroupVersionKind().Group, Version: u.GroupVersionKind().Version, Resource: lower(u.GetKind())}
	c.writeStatus(ctx, gvr, u, status)
}

// byPod is the object's status.byPod with id's entry replaced, sorted by id.
func byPod(u *unstructured.Unstructured, id string, entry map[string]any) []any {
	old, _, _ := unstructured.NestedSlice(u.Object, "status", "byPod")
	out := []any{entry}
	for _, e := range old {
		if m, ok := e.(map[string]any); ok && m["id"] != id {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := out[i].(map[string]any)
		b, _ := out[j].(map[string]any)
		x, _ := a["id"].(string)
		y, _ := b["id"].(string)
		return x < y
	})
	return out
}

// writeStatus updates the status subresource when it differs; a conflict (another replica wrote first) is
// retried at the next sync.
func (c *Controller) writeStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, status map[string]any) {
	norm, err := normalise(status)
	if err != nil {
		return
	}
	if reflect.DeepEqual(u.Object["status"], norm) {
		return
	}
	obj := u.DeepCopy()
	obj.Object["status"] = norm
	if _, err := c.dyn.Resource(gvr).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		c.o.Log.Warn("gatekeeper: write status", "resource", u.GetKind()+"/"+u.GetName(), "error", err)
		c.retryLater()
	}
}

// normalise gives a value the JSON types an object read from the API server has (int64 numbers).
func normalise(v map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return runtime.DeepCopyJSON(fixNumbers(out).(map[string]any)), nil
}

// fixNumbers turns float64 JSON numbers that are whole into int64, as client-go's decoder does.
func fixNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = fixNumbers(e)
		}
	case float64:
		if t == float64(int64(t)) {
			return int64(t)
		}
	}
	return v
}
