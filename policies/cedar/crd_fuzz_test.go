package cedar

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FuzzCustomKinds feeds arbitrary CRD manifests (read from files and from the cluster: untrusted). Reading and
// converting them may fail or skip a CRD but never panic, and whatever is converted must make a schema Cedar
// parses and resolves (else one odd CRD would take every custom kind down with it). An internal test: the
// schema is written without the built-in kinds (metadata a small record), or each run would parse 200 KB.
func FuzzCustomKinds(f *testing.F) {
	for _, name := range []string{"crontab.yaml", "backup.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "crds", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"x"},"spec":{"group":"a-1.b","names":{"kind":"K"},"versions":[{"name":"v1","served":true,"schema":{"openAPIV3Schema":{"required":["s"],"properties":{"s":{"type":"object","additionalProperties":{"type":"array","items":{"type":"string"}}}}}}},{"name":"2","served":true}]}}`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		crds, err := ReadCRDs("fuzz.yaml", manifest)
		if err != nil || len(crds) == 0 {
			return
		}
		small := &builtinKinds{ss: newShapes(), kinds: map[types.EntityType]*shape{}, groupKinds: map[types.EntityType]schema.GroupKind{},
			objectKinds: []string{"k8s::User"}, connect: []string{"k8s::Group"}, // principals stand in for the built-in kinds
			meta: &shape{kind: kindRecord, fields: map[string]*field{"name": {s: stringShape}}}}
		custom, _ := small.customKinds(crds)
		if _, err := small.schema(custom); err != nil {
			t.Fatalf("converted CRDs make no schema: %v", err)
		}
	})
}
