package admission

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestOwnerReferenceAsTheConverterReadsIt: every reference reads as runtime.DefaultUnstructuredConverter reads it,
// and one the converter refuses is refused.
func TestOwnerReferenceAsTheConverterReadsIt(t *testing.T) {
	refs := []any{
		map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c5", "uid": "rs-1", "controller": true, "blockOwnerDeletion": true},
		map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1", "controller": false},
		map[string]any{"kind": "ReplicaSet", "name": "web"},
		map[string]any{"kind": "ReplicaSet", "name": "web", "controller": nil, "uid": nil, "extra": map[string]any{"x": 1}},
		map[string]any{},
		map[string]any{"kind": "ReplicaSet", "name": int64(7)},
		map[string]any{"kind": "ReplicaSet", "uid": 12.5},
		map[string]any{"kind": "ReplicaSet", "controller": "true"},
		map[string]any{"kind": "ReplicaSet", "blockOwnerDeletion": int64(1)},
		map[string]any{"kind": []any{"ReplicaSet"}},
		"not an object",
		nil,
	}
	for i, r := range refs {
		var want metav1.OwnerReference
		wantOK := false
		if m, isMap := r.(map[string]any); isMap {
			wantOK = runtime.DefaultUnstructuredConverter.FromUnstructured(m, &want) == nil
		}
		got, ok := ownerReference(r)
		if ok != wantOK || (ok && !reflect.DeepEqual(got, want)) {
			t.Errorf("reference %d %v: read %+v (%v), the converter %+v (%v)", i, r, got, ok, want, wantOK)
		}
	}
}
