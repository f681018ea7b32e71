package admission_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
)

// libraryEvaluator is the pipeline with every policy of the library, as TrustedConfig sets it up.
func libraryEvaluator(b *testing.B) *admission.Evaluator {
	b.Helper()
	return Pipeline(b, TrustedConfig, "")
}

// templateSpec is a 3-container pod spec (an init container and two containers) whose app image has tag tag.
func templateSpec(tag string) PodSpec {
	return PodSpec{
		Init: []Container{NewContainer("migrate", "gcr.io/company/migrate:1.4")},
		Containers: []Container{
			NewContainer("app", "gcr.io/company/app:"+tag),
			NewContainer("proxy", "nginx:1.27"),
		},
	}
}

// BenchmarkLibraryDistinctDeployments is the first admission of each of 4,096 different 3-container Deployments
// through the whole library: more than the memo holds, so every policy runs (the cost of a new pod template).
func BenchmarkLibraryDistinctDeployments(b *testing.B) {
	ev := libraryEvaluator(b)
	ins := make([]admission.Input, 4096)
	for i := range ins {
		ins[i] = Create(Object(Deployment, "shop", fmt.Sprintf("web-%d", i), templateSpec(fmt.Sprintf("2.%d", i))))
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.Evaluate(ctx, ins[i%len(ins)])
		i++
	}
}

// BenchmarkLibraryReplicaSetPods is what follows a Deployment change: the Pods its ReplicaSet creates, each with its
// own generated name and UID but the same template, after the first Pod was decided. Policies that read only the
// pod template (containers, images, parameters) answer from the memo; those that read the name, the whole object
// or the request time run.
func BenchmarkLibraryReplicaSetPods(b *testing.B) {
	ev := libraryEvaluator(b)
	pod := func(i int) admission.Input {
		obj := Object(Pod, "shop", fmt.Sprintf("web-7d9c5-%05d", i), templateSpec("2.1"))
		md := obj["metadata"].(map[string]any)
		md["uid"] = fmt.Sprintf("uid-%d", i)
		md["labels"] = map[string]any{"app": "web", "pod-template-hash": "7d9c5"}
		md["ownerReferences"] = []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c5", "uid": "rs-uid", "controller": true}}
		in := Create(obj)
		in.Request.UID = fmt.Sprintf("req-%d", i)
		return in
	}
	ctx := context.Background()
	ev.Evaluate(ctx, pod(0))
	ins := make([]admission.Input, 1024)
	for i := range ins {
		ins[i] = pod(i + 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.Evaluate(ctx, ins[i%len(ins)])
		i++
	}
}
