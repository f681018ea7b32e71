package workload_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/continuums/attest/workload"
)

// kindCase describes one workload kind and where the test expects its pod spec to be. The layouts are written out
// here independently of the package's own table so the tests check it rather than restate it.
type kindCase struct {
	name    string
	gk      workload.GroupKind
	podPath string
}

var (
	gkPod         = workload.GroupKind{Group: "", Kind: "Pod"}
	gkRC          = workload.GroupKind{Group: "", Kind: "ReplicationController"}
	gkDeployment  = workload.GroupKind{Group: "apps", Kind: "Deployment"}
	gkReplicaSet  = workload.GroupKind{Group: "apps", Kind: "ReplicaSet"}
	gkStatefulSet = workload.GroupKind{Group: "apps", Kind: "StatefulSet"}
	gkDaemonSet   = workload.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkJob         = workload.GroupKind{Group: "batch", Kind: "Job"}
	gkCronJob     = workload.GroupKind{Group: "batch", Kind: "CronJob"}
	gkConfigMap   = workload.GroupKind{Group: "", Kind: "ConfigMap"}
	gkCRD         = workload.GroupKind{Group: "example.com", Kind: "Deployment"}
)

var workloadKinds = []kindCase{
	{"Pod", gkPod, "spec"},
	{"ReplicationController", gkRC, "spec.template.spec"},
	{"Deployment", gkDeployment, "spec.template.spec"},
	{"ReplicaSet", gkReplicaSet, "spec.template.spec"},
	{"StatefulSet", gkStatefulSet, "spec.template.spec"},
	{"DaemonSet", gkDaemonSet, "spec.template.spec"},
	{"Job", gkJob, "spec.template.spec"},
	{"CronJob", gkCronJob, "spec.jobTemplate.spec.template.spec"},
}

// --- builders ---

type specOpt func(spec map[string]any)

// pod builds a pod spec from options.
func pod(opts ...specOpt) map[string]any {
	spec := map[string]any{}
	for _, o := range opts {
		o(spec)
	}
	return spec
}

func appendTo(field string, c map[string]any) specOpt {
	return func(spec map[string]any) {
		list, _ := spec[field].([]any)
		spec[field] = append(list, c)
	}
}

func ctr(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

func withContainer(name, image string) specOpt { return appendTo("containers", ctr(name, image)) }
func withInit(name, image string) specOpt      { return appendTo("initContainers", ctr(name, image)) }
func withEphemeral(name, image string) specOpt {
	return appendTo("ephemeralContainers", ctr(name, image))
}

// withField sets an arbitrary field of the pod spec (used for malformed and empty lists).
func withField(key string, v any) specOpt {
	return func(spec map[string]any) { spec[key] = v }
}

// wrap places a pod spec (and the pod template's metadata, if non-nil) where objects of kind gk keep it.
func wrap(gk workload.GroupKind, meta, spec map[string]any) map[string]any {
	template := map[string]any{"spec": spec}
	if meta != nil {
		template["metadata"] = meta
	}
	switch gk {
	case gkPod:
		template["apiVersion"] = "v1"
		template["kind"] = "Pod"
		return template
	case gkCronJob:
		return map[string]any{
			"apiVersion": "batch/v1",
			"kind":       "CronJob",
			"metadata":   map[string]any{"name": "owner"},
			"spec": map[string]any{
				"schedule":    "* * * * *",
				"jobTemplate": map[string]any{"spec": map[string]any{"template": template}},
			},
		}
	default:
		return map[string]any{
			"kind":     gk.Kind,
			"metadata": map[string]any{"name": "owner"},
			"spec":     map[string]any{"replicas": float64(1), "template": template},
		}
	}
}

// view is the comparable part of a Container.
type view struct {
	Path, PodPath string
	Type          workload.Type
	Name, Image   string
}

func views(cs []workload.Container) []view {
	if cs == nil {
		return nil
	}
	out := make([]view, len(cs))
	for i, c := range cs {
		out[i] = view{c.Path, c.PodPath, c.Type, c.Name, c.Image}
	}
	return out
}

func formatViews(vs []view) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n  %+v", v)
	}
	return b.String()
}

// --- Extract ---

func TestExtractPerKind(t *testing.T) {
	spec := pod(
		withEphemeral("debugger", "busybox:1"),
		withContainer("app", "app:1"),
		withInit("init-a", "init:a"),
		withContainer("sidecar", "proxy:2"),
		withInit("init-b", "init:b"),
	)
	for _, k := range workloadKinds {
		t.Run(k.name, func(t *testing.T) {
			p := k.podPath
			want := []view{
				{p + ".initContainers[0]", p, workload.TypeInit, "init-a", "init:a"},
				{p + ".initContainers[1]", p, workload.TypeInit, "init-b", "init:b"},
				{p + ".containers[0]", p, workload.TypeContainer, "app", "app:1"},
				{p + ".containers[1]", p, workload.TypeContainer, "sidecar", "proxy:2"},
				{p + ".ephemeralContainers[0]", p, workload.TypeEphemeral, "debugger", "busybox:1"},
			}
			got, err := workload.Extract(k.gk, "", wrap(k.gk, nil, spec))
			if err != nil {
				t.Fatalf("Extract: unexpected error: %v", err)
			}
			if gv := views(got); !reflect.DeepEqual(gv, want) {
				t.Errorf("Extract containers:\ngot:%s\nwant:%s", formatViews(gv), formatViews(want))
			}
		})
	}
}

func TestExtractCronJobInitPath(t *testing.T) {
	obj := wrap(gkCronJob, nil, pod(withInit("first", "a"), withInit("second", "b"), withContainer("main", "c")))
	got, err := workload.Extract(gkCronJob, "", obj)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("Extract returned %d containers, want 3: %s", len(got), formatViews(views(got)))
	}
	const wantPath = "spec.jobTemplate.spec.template.spec.initContainers[1]"
	if got[1].Path != wantPath || got[1].Name != "second" || got[1].Type != workload.TypeInit {
		t.Errorf("second init container = %+v, want Path %q, Name %q, Type %q",
			views(got)[1], wantPath, "second", workload.TypeInit)
	}
	if got[1].PodPath != "spec.jobTemplate.spec.template.spec" {
		t.Errorf("PodPath = %q, want %q", got[1].PodPath, "spec.jobTemplate.spec.template.spec")
	}
}

func TestExtractFieldsAreAdmittedObject(t *testing.T) {
	c := map[string]any{
		"name":            "app",
		"image":           "app:1",
		"securityContext": map[string]any{"privileged": true},
	}
	obj := wrap(gkDeployment, nil, pod(appendTo("containers", c)))
	got, err := workload.Extract(gkDeployment, "", obj)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d containers, want 1", len(got))
	}
	if !reflect.DeepEqual(got[0].Fields, c) {
		t.Errorf("Fields = %v, want %v", got[0].Fields, c)
	}
}

func TestExtractNameAndImageOptional(t *testing.T) {
	obj := wrap(gkPod, nil, pod(
		appendTo("containers", map[string]any{}),
		appendTo("containers", map[string]any{"name": nil, "image": nil}),
	))
	got, err := workload.Extract(gkPod, "", obj)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	want := []view{
		{"spec.containers[0]", "spec", workload.TypeContainer, "", ""},
		{"spec.containers[1]", "spec", workload.TypeContainer, "", ""},
	}
	if gv := views(got); !reflect.DeepEqual(gv, want) {
		t.Errorf("got:%s\nwant:%s", formatViews(gv), formatViews(want))
	}
}

func TestExtractSubresource(t *testing.T) {
	spec := pod(
		withInit("init", "init:1"),
		withContainer("app", "app:1"),
		withEphemeral("debug-a", "busybox:1"),
		withEphemeral("debug-b", "busybox:2"),
	)
	tests := []struct {
		name        string
		gk          workload.GroupKind
		subresource string
		obj         map[string]any
		want        []view
	}{
		{
			name:        "pods/ephemeralcontainers returns only ephemeral containers",
			gk:          gkPod,
			subresource: workload.SubresourceEphemeralContainers,
			obj:         wrap(gkPod, nil, spec),
			want: []view{
				{"spec.ephemeralContainers[0]", "spec", workload.TypeEphemeral, "debug-a", "busybox:1"},
				{"spec.ephemeralContainers[1]", "spec", workload.TypeEphemeral, "debug-b", "busybox:2"},
			},
		},
		{
			name:        "pods/ephemeralcontainers ignores malformed non-ephemeral lists",
			gk:          gkPod,
			subresource: workload.SubresourceEphemeralContainers,
			obj: wrap(gkPod, nil, pod(
				withField("containers", "not-a-list"),
				withField("initContainers", []any{"nope"}),
				withEphemeral("debug", "busybox:1"),
			)),
			want: []view{
				{"spec.ephemeralContainers[0]", "spec", workload.TypeEphemeral, "debug", "busybox:1"},
			},
		},
		{
			name:        "pods/ephemeralcontainers without ephemeral containers",
			gk:          gkPod,
			subresource: workload.SubresourceEphemeralContainers,
			obj:         wrap(gkPod, nil, pod(withContainer("app", "app:1"))),
			want:        nil,
		},
		{
			name:        "other pod subresource returns everything",
			gk:          gkPod,
			subresource: "status",
			obj:         wrap(gkPod, nil, spec),
			want: []view{
				{"spec.initContainers[0]", "spec", workload.TypeInit, "init", "init:1"},
				{"spec.containers[0]", "spec", workload.TypeContainer, "app", "app:1"},
				{"spec.ephemeralContainers[0]", "spec", workload.TypeEphemeral, "debug-a", "busybox:1"},
				{"spec.ephemeralContainers[1]", "spec", workload.TypeEphemeral, "debug-b", "busybox:2"},
			},
		},
		{
			name:        "ephemeralcontainers subresource on a Deployment is not special",
			gk:          gkDeployment,
			subresource: workload.SubresourceEphemeralContainers,
			obj:         wrap(gkDeployment, nil, pod(withContainer("app", "app:1"))),
			want: []view{
				{"spec.template.spec.containers[0]", "spec.template.spec", workload.TypeContainer, "app", "app:1"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := workload.Extract(tc.gk, tc.subresource, tc.obj)
			if err != nil {
				t.Fatalf("Extract: unexpected error: %v", err)
			}
			if gv := views(got); !reflect.DeepEqual(gv, tc.want) {
				t.Errorf("got:%s\nwant:%s", formatViews(gv), formatViews(tc.want))
			}
		})
	}
}

func TestExtractNonWorkloadKinds(t *testing.T) {
	tests := []struct {
		name string
		gk   workload.GroupKind
		obj  map[string]any
	}{
		{
			name: "ConfigMap",
			gk:   gkConfigMap,
			obj:  map[string]any{"kind": "ConfigMap", "data": map[string]any{"containers": "x"}},
		},
		{
			name: "CRD kind Deployment in example.com",
			gk:   gkCRD,
			obj:  wrap(gkDeployment, nil, pod(withContainer("app", "app:1"))),
		},
		{
			name: "CRD kind Deployment in example.com with malformed template",
			gk:   gkCRD,
			obj:  map[string]any{"spec": map[string]any{"template": "not-an-object"}},
		},
		{
			name: "Pod kind in another group",
			gk:   workload.GroupKind{Group: "example.com", Kind: "Pod"},
			obj:  wrap(gkPod, nil, pod(withContainer("app", "app:1"))),
		},
		{
			name: "Deployment kind in core group",
			gk:   workload.GroupKind{Group: "", Kind: "Deployment"},
			obj:  wrap(gkDeployment, nil, pod(withContainer("app", "app:1"))),
		},
		{
			name: "empty GroupKind",
			gk:   workload.GroupKind{},
			obj:  wrap(gkPod, nil, pod(withContainer("app", "app:1"))),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, sub := range []string{"", workload.SubresourceEphemeralContainers} {
				got, err := workload.Extract(tc.gk, sub, tc.obj)
				if got != nil || err != nil {
					t.Errorf("Extract(%+v, %q) = %v, %v; want nil, nil", tc.gk, sub, got, err)
				}
			}
		})
	}
}

func TestExtractEmpty(t *testing.T) {
	type emptyCase struct {
		name string
		gk   workload.GroupKind
		obj  map[string]any
	}
	var tests []emptyCase
	for _, k := range workloadKinds {
		tests = append(tests,
			emptyCase{k.name + "/nil object", k.gk, nil},
			emptyCase{k.name + "/empty object", k.gk, map[string]any{}},
			emptyCase{k.name + "/null spec", k.gk, map[string]any{"spec": nil}},
			emptyCase{k.name + "/empty pod spec", k.gk, wrap(k.gk, nil, pod())},
			emptyCase{k.name + "/empty lists", k.gk, wrap(k.gk, nil, pod(
				withField("initContainers", []any{}),
				withField("containers", []any{}),
				withField("ephemeralContainers", []any{}),
			))},
			emptyCase{k.name + "/null lists", k.gk, wrap(k.gk, nil, pod(
				withField("initContainers", nil),
				withField("containers", nil),
				withField("ephemeralContainers", nil),
			))},
		)
	}
	templated := []struct {
		name string
		gk   workload.GroupKind
		spec map[string]any
	}{
		{"ReplicationController", gkRC, map[string]any{"replicas": float64(1)}},
		{"Deployment", gkDeployment, map[string]any{"replicas": float64(1)}},
		{"ReplicaSet", gkReplicaSet, map[string]any{}},
		{"StatefulSet", gkStatefulSet, map[string]any{"serviceName": "x"}},
		{"DaemonSet", gkDaemonSet, map[string]any{}},
		{"Job", gkJob, map[string]any{"template": nil}},
		{"CronJob", gkCronJob, map[string]any{"schedule": "* * * * *"}},
	}
	for _, tt := range templated {
		tests = append(tests,
			emptyCase{tt.name + "/missing template", tt.gk, map[string]any{"spec": tt.spec}},
		)
	}
	tests = append(tests,
		emptyCase{"CronJob/missing jobTemplate spec", gkCronJob,
			map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{}}}},
		emptyCase{"CronJob/template without spec", gkCronJob,
			map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{
				"template": map[string]any{"metadata": map[string]any{}},
			}}}}},
		emptyCase{"Deployment/template without spec", gkDeployment,
			map[string]any{"spec": map[string]any{"template": map[string]any{}}}},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, sub := range []string{"", workload.SubresourceEphemeralContainers} {
				got, err := workload.Extract(tc.gk, sub, tc.obj)
				if err != nil {
					t.Errorf("Extract(%q): unexpected error: %v", sub, err)
				}
				if len(got) != 0 {
					t.Errorf("Extract(%q) = %s; want no containers", sub, formatViews(views(got)))
				}
			}
		})
	}
}

func TestExtractMalformed(t *testing.T) {
	tests := []struct {
		name        string
		gk          workload.GroupKind
		subresource string
		obj         map[string]any
		wantPath    string // the error must start with this path followed by ":"
		wantInErr   string
	}{
		{
			name:      "containers not a list",
			gk:        gkDeployment,
			obj:       wrap(gkDeployment, nil, pod(withField("containers", map[string]any{"name": "app"}))),
			wantPath:  "spec.template.spec.containers",
			wantInErr: "got an object",
		},
		{
			name:      "initContainers is a string",
			gk:        gkPod,
			obj:       wrap(gkPod, nil, pod(withField("initContainers", "app"))),
			wantPath:  "spec.initContainers",
			wantInErr: "got a string",
		},
		{
			name:        "ephemeralContainers is a number on ephemeralcontainers subresource",
			gk:          gkPod,
			subresource: workload.SubresourceEphemeralContainers,
			obj:         wrap(gkPod, nil, pod(withField("ephemeralContainers", float64(3)))),
			wantPath:    "spec.ephemeralContainers",
			wantInErr:   "got a number",
		},
		{
			name: "container is a string",
			gk:   gkCronJob,
			obj: wrap(gkCronJob, nil, pod(
				withField("containers", []any{map[string]any{"name": "ok"}, "nginx"}),
			)),
			wantPath:  "spec.jobTemplate.spec.template.spec.containers[1]",
			wantInErr: "got a string",
		},
		{
			name:      "init container is null",
			gk:        gkJob,
			obj:       wrap(gkJob, nil, pod(withField("initContainers", []any{nil}))),
			wantPath:  "spec.template.spec.initContainers[0]",
			wantInErr: "got null",
		},
		{
			name: "image is a number",
			gk:   gkStatefulSet,
			obj: wrap(gkStatefulSet, nil, pod(
				withInit("init", "init:1"),
				appendTo("initContainers", map[string]any{"name": "bad", "image": float64(42)}),
			)),
			wantPath:  "spec.template.spec.initContainers[1].image",
			wantInErr: "got a number",
		},
		{
			name:      "name is a list",
			gk:        gkPod,
			obj:       wrap(gkPod, nil, pod(appendTo("ephemeralContainers", map[string]any{"name": []any{"x"}}))),
			wantPath:  "spec.ephemeralContainers[0].name",
			wantInErr: "got a list",
		},
		{
			name:      "template is a string",
			gk:        gkDaemonSet,
			obj:       map[string]any{"spec": map[string]any{"template": "pod"}},
			wantPath:  "spec.template",
			wantInErr: "got a string",
		},
		{
			name:      "spec is a boolean",
			gk:        gkPod,
			obj:       map[string]any{"spec": true},
			wantPath:  "spec",
			wantInErr: "got a boolean",
		},
		{
			name:      "jobTemplate is a list",
			gk:        gkCronJob,
			obj:       map[string]any{"spec": map[string]any{"jobTemplate": []any{}}},
			wantPath:  "spec.jobTemplate",
			wantInErr: "got a list",
		},
		{
			name: "CronJob template is a string",
			gk:   gkCronJob,
			obj: map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{
				"spec": map[string]any{"template": "pod"},
			}}},
			wantPath:  "spec.jobTemplate.spec.template",
			wantInErr: "got a string",
		},
		{
			name:      "pod spec is a string",
			gk:        gkReplicaSet,
			obj:       map[string]any{"spec": map[string]any{"template": map[string]any{"spec": "x"}}},
			wantPath:  "spec.template.spec",
			wantInErr: "got a string",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := workload.Extract(tc.gk, tc.subresource, tc.obj)
			if err == nil {
				t.Fatalf("Extract: got %s, nil error; want error naming %q", formatViews(views(got)), tc.wantPath)
			}
			if got != nil {
				t.Errorf("Extract returned containers alongside error: %s", formatViews(views(got)))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.wantPath+":") {
				t.Errorf("error %q does not start with path %q", msg, tc.wantPath+":")
			}
			if !strings.Contains(msg, tc.wantInErr) {
				t.Errorf("error %q does not contain %q", msg, tc.wantInErr)
			}
		})
	}
}

// --- PodSpecPath, IsWorkload, PodTemplateMetadata ---

func TestPodSpecPathAndIsWorkload(t *testing.T) {
	tests := []struct {
		name         string
		gk           workload.GroupKind
		wantPath     string
		wantWorkload bool
	}{
		{"ConfigMap", gkConfigMap, "", false},
		{"CRD Deployment in example.com", gkCRD, "", false},
		{"Deployment in core group", workload.GroupKind{Kind: "Deployment"}, "", false},
		{"lowercase pod", workload.GroupKind{Kind: "pod"}, "", false},
		{"CronJob in apps", workload.GroupKind{Group: "apps", Kind: "CronJob"}, "", false},
		{"empty", workload.GroupKind{}, "", false},
	}
	for _, k := range workloadKinds {
		tests = append(tests, struct {
			name         string
			gk           workload.GroupKind
			wantPath     string
			wantWorkload bool
		}{k.name, k.gk, k.podPath, true})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := workload.PodSpecPath(tc.gk); got != tc.wantPath {
				t.Errorf("PodSpecPath(%+v) = %q, want %q", tc.gk, got, tc.wantPath)
			}
			if got := workload.IsWorkload(tc.gk); got != tc.wantWorkload {
				t.Errorf("IsWorkload(%+v) = %v, want %v", tc.gk, got, tc.wantWorkload)
			}
		})
	}
}

func TestPodTemplateMetadata(t *testing.T) {
	meta := func() map[string]any {
		return map[string]any{
			"labels":      map[string]any{"app": "web"},
			"annotations": map[string]any{"attest.example/skip": "true"},
		}
	}
	type mdCase struct {
		name string
		gk   workload.GroupKind
		obj  map[string]any
		want map[string]any
	}
	var tests []mdCase
	for _, k := range workloadKinds {
		badMeta := wrap(k.gk, nil, pod())
		setTemplateMetadata(k.gk, badMeta, "oops")
		tests = append(tests,
			mdCase{k.name + "/template metadata", k.gk, wrap(k.gk, meta(), pod(withContainer("a", "b"))), meta()},
			mdCase{k.name + "/no metadata", k.gk, wrap(k.gk, nil, pod(withContainer("a", "b"))), nil},
			mdCase{k.name + "/metadata not an object", k.gk, badMeta, nil},
			mdCase{k.name + "/nil object", k.gk, nil, nil},
			mdCase{k.name + "/empty object", k.gk, map[string]any{}, nil},
		)
	}
	// The owner's own metadata must not be mistaken for the template's.
	ownerOnly := wrap(gkDeployment, nil, pod())
	ownerOnly["metadata"] = meta()
	cronOwnerOnly := wrap(gkCronJob, nil, pod())
	cronOwnerOnly["metadata"] = meta()
	tests = append(tests,
		mdCase{"Deployment/only owner metadata", gkDeployment, ownerOnly, nil},
		mdCase{"CronJob/only owner metadata", gkCronJob, cronOwnerOnly, nil},
		mdCase{"CronJob/jobTemplate metadata is not the pod template's", gkCronJob,
			map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{
				"metadata": meta(),
				"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{}}},
			}}}, nil},
		mdCase{"Deployment/template is a string", gkDeployment,
			map[string]any{"spec": map[string]any{"template": "x"}}, nil},
		mdCase{"Pod/empty metadata", gkPod, map[string]any{"metadata": map[string]any{}}, map[string]any{}},
		mdCase{"ConfigMap", gkConfigMap, map[string]any{"metadata": meta()}, nil},
		mdCase{"CRD Deployment in example.com", gkCRD, wrap(gkDeployment, meta(), pod()), nil},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := workload.PodTemplateMetadata(tc.gk, tc.obj)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PodTemplateMetadata = %#v, want %#v", got, tc.want)
			}
			if (got == nil) != (tc.want == nil) {
				t.Errorf("PodTemplateMetadata nil = %v, want nil = %v", got == nil, tc.want == nil)
			}
		})
	}
}

// setTemplateMetadata overwrites the pod template's metadata of an object built by wrap.
func setTemplateMetadata(gk workload.GroupKind, obj map[string]any, md any) {
	switch gk {
	case gkPod:
		obj["metadata"] = md
	case gkCronJob:
		obj["spec"].(map[string]any)["jobTemplate"].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = md
	default:
		obj["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = md
	}
}
