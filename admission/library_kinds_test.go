package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
)

// The acceptance: every seed policy denies and allows what the policy documents say for Pod, Deployment,
// StatefulSet, DaemonSet, Job and CronJob, through the one pipeline with the whole library compiled. Each policy
// runs alone in enforce mode. require-attestation and require-receipt need the verifier's facts; they are shown
// per kind against a real registry in verify_test.go.
func TestEveryPolicyOnEveryWorkloadKind(t *testing.T) {
	engine := Engine(t)
	kinds := []Kind{Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob}
	good := func(opts ...ContainerOpt) Container {
		c := NewContainer("app", "gcr.io/company/app:1.2.3", func(c Container) {
			c["resources"] = map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}}
		})
		for _, o := range opts {
			o(c)
		}
		return c
	}
	image := func(ref string) ContainerOpt { return func(c Container) { c["image"] = ref } }
	noResources := func(c Container) { delete(c, "resources") }
	annotate := func(obj map[string]any, kv ...string) map[string]any {
		md := obj["metadata"].(map[string]any)
		ann := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			ann[kv[i]] = kv[i+1]
		}
		md["annotations"] = ann
		return obj
	}
	replicas := func(n int) func(map[string]any) map[string]any {
		return func(obj map[string]any) map[string]any {
			if spec, ok := obj["spec"].(map[string]any); ok && obj["kind"] != "Pod" {
				spec["replicas"] = n
			}
			return obj
		}
	}
	same := func(obj map[string]any) map[string]any { return obj }
	tests := []struct {
		policy, params string
		// applies says which kinds the policy judges; for the others the violating object must be allowed.
		applies       func(Kind) bool
		compliant     func(Kind) map[string]any
		violating     func(Kind) map[string]any
		at            string // request time, for change-window
		wantViolation string
	}{
		{policy: "no-privileged", applies: all,
			compliant: obj(PodSpec{Containers: []Container{good()}}, same), violating: obj(PodSpec{Init: []Container{good(Privileged())}, Containers: []Container{good()}}, same),
			wantViolation: "privileged containers are not allowed"},
		{policy: "trusted-registries", params: "trusted_registries: [gcr.io/company]", applies: all,
			compliant: obj(PodSpec{Containers: []Container{good()}}, same), violating: obj(PodSpec{Containers: []Container{good(image("gcr.io/company-evil/app:1"))}}, same),
			wantViolation: "which is not a trusted registry"},
		{policy: "disallow-latest-tag", applies: all,
			compliant: obj(PodSpec{Containers: []Container{good()}}, same), violating: obj(PodSpec{Containers: []Container{good(image("gcr.io/company/app:latest"))}}, same),
			wantViolation: "it uses the tag latest"},
		{policy: "resource-limits", applies: all,
			compliant: obj(PodSpec{Containers: []Container{good()}}, same), violating: obj(PodSpec{Containers: []Container{good(noResources)}}, same),
			wantViolation: "no CPU or memory limit is set"},
		{policy: "production-replicas", applies: func(k Kind) bool { return k == Deployment || k == StatefulSet },
			compliant: obj(PodSpec{Containers: []Container{good()}}, replicas(3)), violating: obj(PodSpec{Containers: []Container{good()}}, replicas(1)),
			wantViolation: "replica"},
		{policy: "soc2-audit-logging", applies: all,
			compliant: func(k Kind) map[string]any {
				return annotate(Object(k, "production", "web", PodSpec{Containers: []Container{good()}}), "attest.continuu.ms/audit-logging", "enabled")
			},
			violating:     obj(PodSpec{Containers: []Container{good()}}, same),
			wantViolation: "production workloads must enable audit logging"},
		{policy: "gdpr-annotations", applies: all,
			compliant: func(k Kind) map[string]any {
				return annotate(Object(k, "production", "web", PodSpec{Containers: []Container{good()}}), "gdpr.attest.continuu.ms/personal-data", "true",
					"gdpr.attest.continuu.ms/lawful-basis", "contract", "gdpr.attest.continuu.ms/data-controller", "Company GmbH", "gdpr.attest.continuu.ms/retention-period", "P30D")
			},
			violating: func(k Kind) map[string]any {
				return annotate(Object(k, "production", "web", PodSpec{Containers: []Container{good()}}), "gdpr.attest.continuu.ms/personal-data", "true",
					"gdpr.attest.continuu.ms/lawful-basis", "contract", "gdpr.attest.continuu.ms/data-controller", "Company GmbH", "gdpr.attest.continuu.ms/retention-period", "30 days")
			},
			wantViolation: "is not a duration longer than zero"},
		{policy: "change-window", params: `windows: [{days: [Mon, Tue, Wed, Thu, Fri], start: "08:00", end: "18:00", timezone: UTC}]`, applies: all,
			compliant: obj(PodSpec{Containers: []Container{good()}}, same), violating: obj(PodSpec{Containers: []Container{good()}}, same),
			at: "2026-11-28T14:00:00Z", wantViolation: "allowed only inside a change window"},
	}
	for _, tt := range tests {
		cfgYAML := "policies:\n"
		for _, p := range engine.Policies() {
			mode := "off"
			if p.Name == tt.policy {
				mode = "enforce"
			}
			cfgYAML += "  - name: " + p.Name + "\n    mode: \"" + mode + "\"\n"
			if p.Name == tt.policy && tt.params != "" {
				cfgYAML += "    parameters: {" + tt.params + "}\n"
			}
		}
		cfg, err := config.Parse([]byte(cfgYAML), engine)
		if err != nil {
			t.Fatalf("%s: %v", tt.policy, err)
		}
		ev, err := admission.New(admission.Options{Engine: engine, Config: func() *config.Config { return cfg }})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kinds {
			t.Run(tt.policy+"/"+k.Kind, func(t *testing.T) {
				decide := func(o map[string]any, when string) admission.Decision {
					in := Create(o)
					in.Request.Namespace = "production"
					if when != "" {
						in = at(in, when)
					} else {
						in = at(in, "2026-11-25T12:00:00Z") // a Wednesday, inside the change window
					}
					return ev.Evaluate(context.Background(), in)
				}
				if d := decide(tt.compliant(k), ""); !d.Allowed {
					t.Fatalf("compliant %s denied: %s", k.Kind, d.Message)
				}
				d := decide(tt.violating(k), tt.at)
				switch {
				case tt.applies(k) && (d.Allowed || !strings.HasPrefix(d.Message, "["+tt.policy+"]") || !strings.Contains(d.Message, tt.wantViolation)):
					t.Fatalf("violating %s: allowed=%v message %q, want a %s denial saying %q", k.Kind, d.Allowed, d.Message, tt.policy, tt.wantViolation)
				case !tt.applies(k) && !d.Allowed:
					t.Fatalf("%s does not judge %s objects, yet denied: %s", tt.policy, k.Kind, d.Message)
				}
			})
		}
	}
}

func all(Kind) bool { return true }

// obj builds an object of kind k in the production namespace with spec, then applies edit.
func obj(spec PodSpec, edit func(map[string]any) map[string]any) func(Kind) map[string]any {
	return func(k Kind) map[string]any { return edit(Object(k, "production", "web", spec)) }
}
