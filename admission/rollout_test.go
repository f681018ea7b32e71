package admission_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
)

// rolloutEvaluator is the real pipeline over the foundation policies and resource-limits with configYAML.
func rolloutEvaluator(t *testing.T, configYAML string) *admission.Evaluator {
	t.Helper()
	return Pipeline(t, configYAML, "", append([]string{"resource-limits"}, Foundation...)...)
}

const quietLimits = `
  - name: resource-limits
    mode: "off"
`

func at(in admission.Input, ts string) admission.Input {
	tm, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		panic(err)
	}
	in.Request.TimestampNS = tm.UnixNano()
	return in
}

func TestEnforceAfterAuditsUntilItsTime(t *testing.T) {
	ev := rolloutEvaluator(t, TrustedConfig+quietLimits+`
  - name: no-privileged
    enforceAfter: "2026-12-01T00:00:00Z"
`)
	in := Create(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}}))
	before := ev.Evaluate(context.Background(), at(in, "2026-11-30T23:59:59Z"))
	want := "audit (will be denied from 2026-12-01T00:00:00Z): [no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
	if !before.Allowed || len(before.Warnings) != 1 || before.Warnings[0] != want {
		t.Fatalf("before enforceAfter: allowed=%v warnings=%q\nwant %q", before.Allowed, before.Warnings, want)
	}
	after := ev.Evaluate(context.Background(), at(in, "2026-12-01T00:00:00Z"))
	if after.Allowed || !strings.HasPrefix(after.Message, "[no-privileged]") {
		t.Fatalf("at enforceAfter the same request must be denied: %v %s", after.Allowed, after.Message)
	}
}

func TestExistingWorkloadsAudit(t *testing.T) {
	ev := rolloutEvaluator(t, TrustedConfig+quietLimits+`
  - name: no-privileged
    existingWorkloads: audit
`)
	old := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}})
	update := func(newObj map[string]any) admission.Input {
		in := Create(newObj)
		in.Request.Operation, in.OldObject = "UPDATE", old
		return in
	}
	imageOnly := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:2", Privileged())}})
	d := ev.Evaluate(context.Background(), update(imageOnly))
	if !d.Allowed || len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], "existing (present before this update, not denied; new violations are): [no-privileged] spec.template.spec.containers[0] (app)") {
		t.Fatalf("image-only update of an already privileged Deployment: allowed=%v %s %q", d.Allowed, d.Message, d.Warnings)
	}
	added := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{
		NewContainer("app", "gcr.io/company/app:2", Privileged()), NewContainer("sidecar", "gcr.io/company/proxy:1", Privileged()),
	}})
	d = ev.Evaluate(context.Background(), update(added))
	if d.Allowed || d.Message != "[no-privileged] spec.template.spec.containers[1] (sidecar): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException" {
		t.Fatalf("a new privileged container must be denied alone: %v %q", d.Allowed, d.Message)
	}
	if d := ev.Evaluate(context.Background(), Create(imageOnly)); d.Allowed {
		t.Fatal("existingWorkloads must not soften a CREATE")
	}
}

func TestMatchScopesAPolicy(t *testing.T) {
	ev := rolloutEvaluator(t, TrustedConfig+quietLimits+`
  - name: no-privileged
    match:
      kinds: [Deployment]
      namespaces: ["prod-*"]
      excludedNamespaces: [prod-sandbox]
`)
	privileged := PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", Privileged())}}
	tests := []struct {
		name   string
		obj    map[string]any
		denied bool
	}{
		{"Deployment in prod-a", Object(Deployment, "prod-a", "web", privileged), true},
		{"Pod in prod-a", Object(Pod, "prod-a", "web", privileged), false},
		{"Deployment in dev", Object(Deployment, "dev", "web", privileged), false},
		{"excludedNamespaces wins over namespaces", Object(Deployment, "prod-sandbox", "web", privileged), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Create(tt.obj)
			in.Request.Namespace = tt.obj["metadata"].(map[string]any)["namespace"].(string)
			if d := ev.Evaluate(context.Background(), in); d.Allowed == tt.denied {
				t.Fatalf("denied = %v, want %v (%s)", !d.Allowed, tt.denied, d.Message)
			}
		})
	}
}

func TestMutateRepairsInsteadOfDenying(t *testing.T) {
	limits := `
  - name: resource-limits
    mode: enforce
    mutate: %s
`
	bare := Create(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}}))

	ev := rolloutEvaluator(t, TrustedConfig+strings.Replace(limits, "%s", "true", 1))
	m := ev.Mutate(context.Background(), bare)
	got, _ := json.Marshal(m.Patches)
	want := `[{"op":"add","path":"/spec/template/spec/containers/0/resources","value":{"limits":{"cpu":"500m","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}}]`
	if !m.Allowed || string(got) != want {
		t.Fatalf("patches:\n%s\nwant:\n%s", got, want)
	}
	if len(m.Warnings) != 1 || m.Warnings[0] != "mutated by [resource-limits]: add /spec/template/spec/containers/0/resources" {
		t.Fatalf("warnings %q", m.Warnings)
	}
	repaired := Create(Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1", func(c Container) {
		c["resources"] = map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "512Mi"}, "requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}
	})}}))
	if d := ev.Evaluate(context.Background(), repaired); !d.Allowed {
		t.Fatalf("the patched object is still denied: %s", d.Message)
	}
	if again := ev.Mutate(context.Background(), repaired); len(again.Patches) != 0 {
		t.Fatalf("mutation is not idempotent: %+v", again.Patches)
	}

	strict := rolloutEvaluator(t, TrustedConfig+strings.Replace(limits, "%s", "false", 1))
	if m := strict.Mutate(context.Background(), bare); len(m.Patches) != 0 {
		t.Fatalf("mutate: false patched: %+v", m.Patches)
	}
	if d := strict.Evaluate(context.Background(), bare); d.Allowed || !strings.HasPrefix(d.Message, "[resource-limits]") {
		t.Fatalf("mutate: false must deny: %s", d.Message)
	}
}

func TestRolloutConfigErrors(t *testing.T) {
	e := Engine(t, append([]string{"resource-limits"}, Foundation...)...)
	tests := []struct{ entry, want string }{
		{"  - {name: no-privileged, mutate: true}\n", "policies[1].mutate: policy no-privileged has no patch rule, so it cannot mutate"},
		{"  - {name: no-privileged, enforceAfter: next week}\n", `policies[1].enforceAfter: "next week" is not an RFC 3339 time`},
		{"  - {name: no-privileged, existingWorkloads: maybe}\n", `policies[1].existingWorkloads: "maybe" is not audit or enforce`},
		{"  - {name: no-privileged, match: {namespaces: [\"prod-[\"]}}\n", `policies[1].match.namespaces[0]: "prod-[" is not a namespace name or glob`},
		{"  - {name: no-privileged, match: {kinds: [\"apps/Deployment\"]}}\n", `policies[1].match.kinds[0]`},
		{"  - {name: no-privileged, match: {colour: blue}}\n", `unknown field "policies[1].match.colour"`},
	}
	for _, tt := range tests {
		_, err := config.Parse([]byte(TrustedConfig+tt.entry), e)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", strings.TrimSpace(tt.entry), err, tt.want)
		}
	}
}
