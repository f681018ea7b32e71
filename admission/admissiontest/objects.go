// Package admissiontest builds admission inputs and evaluators for tests: small builders for workload objects
// and an evaluator over the real embedded policy library.
package admissiontest

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// Container is a container object; options shape it.
type Container map[string]any

// ContainerOpt changes a container.
type ContainerOpt func(Container)

// NewContainer builds a container named name running image.
func NewContainer(name, image string, opts ...ContainerOpt) Container {
	c := Container{"name": name, "image": image}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Privileged sets securityContext.privileged: true.
func Privileged() ContainerOpt {
	return func(c Container) { c["securityContext"] = map[string]any{"privileged": true} }
}

// PodSpec holds the three container lists.
type PodSpec struct {
	Init, Containers, Ephemeral []Container
}

func (s PodSpec) object() map[string]any {
	spec := map[string]any{}
	put := func(key string, cs []Container) {
		if len(cs) == 0 {
			return
		}
		list := make([]any, len(cs))
		for i, c := range cs {
			list[i] = map[string]any(c)
		}
		spec[key] = list
	}
	put("initContainers", s.Init)
	put("containers", s.Containers)
	put("ephemeralContainers", s.Ephemeral)
	return spec
}

// Kind names a workload kind with its apiVersion.
type Kind struct{ APIVersion, Kind string }

// Workload kinds, as served today.
var (
	Pod                   = Kind{"v1", "Pod"}
	ReplicationController = Kind{"v1", "ReplicationController"}
	Deployment            = Kind{"apps/v1", "Deployment"}
	ReplicaSet            = Kind{"apps/v1", "ReplicaSet"}
	StatefulSet           = Kind{"apps/v1", "StatefulSet"}
	DaemonSet             = Kind{"apps/v1", "DaemonSet"}
	Job                   = Kind{"batch/v1", "Job"}
	CronJob               = Kind{"batch/v1", "CronJob"}
	AllKinds              = []Kind{Pod, ReplicationController, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob}
)

// Object wraps spec into an object of kind k named name in namespace ns, with the pod spec where k keeps it.
func Object(k Kind, ns, name string, spec PodSpec) map[string]any {
	obj := map[string]any{
		"apiVersion": k.APIVersion, "kind": k.Kind,
		"metadata": map[string]any{"name": name, "namespace": ns},
	}
	ps := spec.object()
	template := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": ps}
	switch k {
	case Pod:
		obj["spec"] = ps
	case CronJob:
		obj["spec"] = map[string]any{"schedule": "0 * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": template}}}
	default:
		obj["spec"] = map[string]any{"template": template}
	}
	return obj
}

// PodSpecPath is where k keeps its pod spec, written out independently of the workload package.
func PodSpecPath(k Kind) string {
	switch k {
	case Pod:
		return "spec"
	case CronJob:
		return "spec.jobTemplate.spec.template.spec"
	}
	return "spec.template.spec"
}

// Create is the CREATE request for obj, at a fixed time.
func Create(obj map[string]any) admission.Input {
	return admission.ObjectInput(obj, "default", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

// Engine compiles the embedded library, or only the named policies of it.
func Engine(t testing.TB, names ...string) *policies.Engine {
	t.Helper()
	srcs, err := LibrarySources(names...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.Compile(context.Background(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Foundation are the policies the pipeline's own tests judge by: their messages are pinned word for word there,
// and the other library policies (tested beside their Rego) would only add lines to every expectation.
var Foundation = []string{"no-privileged", "trusted-registries"}

// LibrarySources are the embedded library's policies, or only the named ones (by file name, <name>.rego).
func LibrarySources(names ...string) ([]policies.Source, error) {
	srcs, _, err := policies.Library()
	if err != nil || len(names) == 0 {
		return srcs, err
	}
	var out []policies.Source
	for _, s := range srcs {
		if slices.Contains(names, strings.TrimSuffix(path.Base(s.Name), ".rego")) {
			out = append(out, s)
		}
	}
	if len(out) != len(names) {
		return nil, fmt.Errorf("library policies %v: found %d of them", names, len(out))
	}
	return out, nil
}

// TrustedConfig is a config trusting gcr.io/company and Docker Hub's official images.
const TrustedConfig = `
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: ["gcr.io/company", "docker.io/library"]
`

// Evaluator builds the real pipeline over the foundation policies with the given policies.yaml text and global mode.
func Evaluator(t testing.TB, configYAML string, mode policies.Mode) *admission.Evaluator {
	t.Helper()
	return Pipeline(t, configYAML, mode, Foundation...)
}

// Pipeline builds the real pipeline over the named policies of the library (every one when none is named) with
// the given policies.yaml text and global mode.
func Pipeline(t testing.TB, configYAML string, mode policies.Mode, names ...string) *admission.Evaluator {
	t.Helper()
	e := Engine(t, names...)
	cfg, err := config.Parse([]byte(configYAML), e)
	if err != nil {
		t.Fatal(fmt.Errorf("config: %w", err))
	}
	ev, err := admission.New(admission.Options{Engine: e, Config: func() *config.Config { return cfg }, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
