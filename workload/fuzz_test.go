package workload_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/continuums/attest/workload"
)

// fuzzKinds are the kinds every fuzz input is extracted as, plus two kinds without pod specs.
var fuzzKinds = []workload.GroupKind{
	gkPod, gkRC, gkDeployment, gkReplicaSet, gkStatefulSet, gkDaemonSet, gkJob, gkCronJob,
	gkConfigMap, gkCRD,
}

// parseGroupKind reads "group/Kind" or "Kind" (core group).
func parseGroupKind(s string) workload.GroupKind {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return workload.GroupKind{Group: s[:i], Kind: s[i+1:]}
	}
	return workload.GroupKind{Kind: s}
}

var typeRank = map[workload.Type]int{
	workload.TypeInit:      0,
	workload.TypeContainer: 1,
	workload.TypeEphemeral: 2,
}

func FuzzExtract(f *testing.F) {
	seeds := []struct{ doc, kind string }{
		{`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":"b"}},"spec":{
			"initContainers":[{"name":"init","image":"init:1"}],
			"containers":[{"name":"app","image":"app:1","securityContext":{"privileged":true}}],
			"ephemeralContainers":[{"name":"dbg","image":"busybox"}]}}`, "Pod"},
		{`{"apiVersion":"batch/v1","kind":"CronJob","spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{
			"metadata":{"labels":{"app":"x"}},
			"spec":{"initContainers":[{"name":"a","image":"a"},{"name":"b","image":"b"}],"containers":[{"name":"c","image":"c"}]}}}}}}`,
			"batch/CronJob"},
		{`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:1"}]}}}}`, "apps/Deployment"},
		{`{"spec":{"containers":{"name":"app"}}}`, "Pod"},
		{`{"spec":{"containers":["nginx"]}}`, "Pod"},
		{`{"spec":{"containers":[{"name":"app","image":42}]}}`, "Pod"},
		{`{"spec":{"template":"pod"}}`, "apps/DaemonSet"},
		{`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"ephemeralContainers":[null]}}}}}}`, "batch/CronJob"},
		{`{"spec":null,"metadata":[]}`, "ConfigMap"},
		{`{}`, "example.com/Deployment"},
		{`[1,2,3]`, "Pod"},
		{`"spec"`, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.doc), s.kind)
	}

	f.Fuzz(func(t *testing.T, data []byte, kind string) {
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
			return // not a JSON object
		}
		kinds := append(fuzzKinds[:len(fuzzKinds):len(fuzzKinds)], parseGroupKind(kind))
		for _, gk := range kinds {
			_ = workload.IsWorkload(gk)
			_ = workload.PodTemplateMetadata(gk, obj)
			for _, sub := range []string{"", workload.SubresourceEphemeralContainers} {
				checkExtract(t, gk, sub, obj)
			}
		}
	})
}

func checkExtract(t *testing.T, gk workload.GroupKind, sub string, obj map[string]any) {
	t.Helper()
	cs, err := workload.Extract(gk, sub, obj)
	if err != nil {
		if cs != nil {
			t.Errorf("Extract(%+v, %q) returned %d containers with error %v", gk, sub, len(cs), err)
		}
		if !workload.IsWorkload(gk) {
			t.Errorf("Extract(%+v, %q) returned error for a non-workload kind: %v", gk, sub, err)
		}
		if !strings.HasPrefix(err.Error(), "spec") {
			t.Errorf("Extract(%+v, %q) error does not start with a path: %v", gk, sub, err)
		}
		return
	}
	if !workload.IsWorkload(gk) && cs != nil {
		t.Errorf("Extract(%+v, %q) returned containers for a non-workload kind", gk, sub)
	}
	podPath := workload.PodSpecPath(gk)
	prev := -1
	for i, c := range cs {
		if c.PodPath != podPath {
			t.Errorf("container %d: PodPath %q, want %q", i, c.PodPath, podPath)
		}
		if !strings.HasPrefix(c.Path, c.PodPath+".") {
			t.Errorf("container %d: Path %q does not start with PodPath %q", i, c.Path, c.PodPath)
		}
		rank, ok := typeRank[c.Type]
		if !ok {
			t.Errorf("container %d: unknown Type %q", i, c.Type)
		}
		if rank < prev {
			t.Errorf("container %d: Type %q out of order", i, c.Type)
		}
		prev = rank
		if gk == gkPod && sub == workload.SubresourceEphemeralContainers && c.Type != workload.TypeEphemeral {
			t.Errorf("container %d: Type %q returned for the ephemeralcontainers subresource", i, c.Type)
		}
		if c.Fields == nil {
			t.Errorf("container %d: nil Fields", i)
		}
		if name, _ := c.Fields["name"].(string); name != c.Name {
			t.Errorf("container %d: Name %q, Fields name %q", i, c.Name, name)
		}
		if image, _ := c.Fields["image"].(string); image != c.Image {
			t.Errorf("container %d: Image %q, Fields image %q", i, c.Image, image)
		}
	}
}
