package admission_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

const privilegedFix = "; remove securityContext.privileged or add a PolicyException"

func TestPrivilegedInEveryKindAndList(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	for _, k := range AllKinds {
		for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
			if list == "ephemeralContainers" && k != Pod {
				continue // templates cannot carry ephemeral containers
			}
			t.Run(k.Kind+"/"+list, func(t *testing.T) {
				spec := PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}}
				bad := NewContainer("bad", "gcr.io/company/tool:1", Privileged())
				index := 0
				switch list {
				case "initContainers":
					spec.Init = []Container{NewContainer("first", "gcr.io/company/init:1"), bad}
					index = 1
				case "containers":
					spec.Containers = append(spec.Containers, bad)
					index = 1
				case "ephemeralContainers":
					spec.Ephemeral = []Container{bad}
				}
				d := ev.Evaluate(context.Background(), Create(Object(k, "shop", "web", spec)))
				want := fmt.Sprintf("[no-privileged] %s.%s[%d] (bad): privileged containers are not allowed%s", PodSpecPath(k), list, index, privilegedFix)
				if d.Allowed || d.Code != 403 || d.Message != want {
					t.Fatalf("got allowed=%v code=%d message:\n%s\nwant:\n%s", d.Allowed, d.Code, d.Message, want)
				}
			})
		}
	}
}

func TestCronJobPrivilegedInitContainerPath(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	obj := Object(CronJob, "batch", "nightly", PodSpec{
		Init:       []Container{NewContainer("a", "gcr.io/company/a"), NewContainer("b", "gcr.io/company/b", Privileged())},
		Containers: []Container{NewContainer("c", "gcr.io/company/c")},
	})
	d := ev.Evaluate(context.Background(), Create(obj))
	if len(d.Violations) != 1 || d.Violations[0].Path != "spec.jobTemplate.spec.template.spec.initContainers[1]" || d.Violations[0].Container != "b" {
		t.Fatalf("violations = %+v", d.Violations)
	}
}

func TestEphemeralContainersSubresource(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	old := Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app:1")}})
	updated := Object(Pod, "shop", "web", PodSpec{
		Containers: []Container{NewContainer("app", "gcr.io/company/app:1")},
		Ephemeral:  []Container{NewContainer("debugger", "busybox:1.36", Privileged())},
	})
	in := Create(updated)
	in.Request.Operation, in.Request.SubResource, in.OldObject = "UPDATE", "ephemeralcontainers", old
	d := ev.Evaluate(context.Background(), in)
	want := "[no-privileged] spec.ephemeralContainers[0] (debugger): privileged containers are not allowed" + privilegedFix
	if d.Allowed || d.Message != want {
		t.Fatalf("got allowed=%v message %q, want %q", d.Allowed, d.Message, want)
	}
}

// TestTrustedRegistriesReferences runs real references through go-containerregistry's parser and the policy.
func TestTrustedRegistriesReferences(t *testing.T) {
	const cfg = `
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: ["gcr.io/company", "docker.io/library", "localhost:5000", "registry.company.com/team/", "GHCR.IO/org"]
`
	ev := Evaluator(t, cfg, "")
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name, image string
		allowed     bool
		message     string // for denials: the problem text
	}{
		{"repository under prefix", "gcr.io/company/app:1.2", true, ""},
		{"nested repository under prefix", "gcr.io/company/team/app", true, ""},
		{"prefix itself as repository", "gcr.io/company", true, ""},
		{"segment bypass company-evil", "gcr.io/company-evil/app", false, `image "gcr.io/company-evil/app" is from gcr.io/company-evil/app, which is not a trusted registry`},
		{"host suffix bypass", "gcr.io.evil.com/company/app", false, `image "gcr.io.evil.com/company/app" is from gcr.io.evil.com/company/app, which is not a trusted registry`},
		{"other registry", "quay.io/company/app", false, `image "quay.io/company/app" is from quay.io/company/app, which is not a trusted registry`},
		{"docker hub short name", "nginx", true, ""},
		{"docker hub short name with tag", "nginx:1.27", true, ""},
		{"docker hub explicit library", "docker.io/library/nginx", true, ""},
		{"docker hub index host", "index.docker.io/library/redis:7", true, ""},
		{"docker hub user repository", "evil/nginx", false, `image "evil/nginx" is from index.docker.io/evil/nginx, which is not a trusted registry`},
		{"digest reference", "gcr.io/company/app@" + digest, true, ""},
		{"tag and digest", "gcr.io/company/app:1@" + digest, true, ""},
		{"untrusted digest", "gcr.io/other/app@" + digest, false, `image "gcr.io/other/app@` + digest + `" is from gcr.io/other/app, which is not a trusted registry`},
		{"registry with port", "localhost:5000/x", true, ""},
		{"other port", "localhost:5001/x", false, `image "localhost:5001/x" is from localhost:5001/x, which is not a trusted registry`},
		{"uppercase host", "GCR.IO/company/app", true, ""},
		{"uppercase entry host", "ghcr.io/org/app", true, ""},
		{"entry with trailing slash", "registry.company.com/team/app", true, ""},
		{"entry with trailing slash, sibling", "registry.company.com/team2/app", false, `image "registry.company.com/team2/app" is from registry.company.com/team2/app, which is not a trusted registry`},
		{"uppercase repository does not parse", "gcr.io/Company/app", false, `image "gcr.io/Company/app" cannot be parsed: image "gcr.io/Company/app" is not a valid reference: the path segment "Company" has upper-case letters: repositories are lower case`},
		{"empty path segment", "gcr.io/company//app", false, `image "gcr.io/company//app" cannot be parsed: image "gcr.io/company//app" is not a valid reference: the repository "company//app" has an empty path segment`},
		// Issue 13: the runtime refuses ".." segments, so they never climb out of a trusted prefix.
		{"dot-dot segment under the prefix", "gcr.io/company/../evil/app:1", false, `image "gcr.io/company/../evil/app:1" cannot be parsed: image "gcr.io/company/../evil/app:1" is not a valid reference: the path segment ".." is not allowed: container runtimes refuse . and .. in a repository`},
		{"dot segment under the prefix", "gcr.io/company/./app", false, `image "gcr.io/company/./app" cannot be parsed: image "gcr.io/company/./app" is not a valid reference: the path segment "." is not allowed: container runtimes refuse . and .. in a repository`},
		{"upper-case first segment is a host", "Company/app:1", false, `image "Company/app:1" is from company/app, which is not a trusted registry`},
		{"empty image", "", false, `image "" cannot be parsed: image reference is empty`},
		{"credentials smuggled in host", "gcr.io/company@evil.com/app", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", tc.image)}})
			d := ev.Evaluate(context.Background(), Create(obj))
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v; message: %s", d.Allowed, tc.allowed, d.Message)
			}
			if tc.allowed {
				return
			}
			var got []string
			for _, v := range d.Violations {
				if v.Policy == "trusted-registries" {
					got = append(got, v.Message)
				}
			}
			if len(got) != 1 {
				t.Fatalf("want one trusted-registries violation, got %q", got)
			}
			if tc.message != "" && got[0] != tc.message {
				t.Fatalf("message\n got %s\nwant %s", got[0], tc.message)
			}
		})
	}
}

func TestAuditModeWarnsWithTheDenialText(t *testing.T) {
	obj := Object(Deployment, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app", Privileged())}})
	enforced := Evaluator(t, TrustedConfig, "").Evaluate(context.Background(), Create(obj))
	if enforced.Allowed {
		t.Fatal("enforced evaluation allowed a privileged container")
	}
	perPolicy := TrustedConfig + "  - name: no-privileged\n    enforcement: warn\n"
	for name, ev := range map[string]*admission.Evaluator{
		"global --mode audit": Evaluator(t, TrustedConfig, policies.ModeAudit),
		"policy warn":         Evaluator(t, perPolicy, ""),
	} {
		t.Run(name, func(t *testing.T) {
			d := ev.Evaluate(context.Background(), Create(obj))
			if !d.Allowed || d.Code != 200 {
				t.Fatalf("audit mode denied: %s", d.Message)
			}
			if len(d.Warnings) != 1 || d.Warnings[0] != "audit: "+enforced.Message {
				t.Fatalf("warnings = %q, want [%q]", d.Warnings, "audit: "+enforced.Message)
			}
			if d.AuditAnnotations[admission.AnnotationDecision] != admission.DecisionWarned {
				t.Fatalf("audit annotations = %v", d.AuditAnnotations)
			}
		})
	}
}

func TestModeOffSkipsThePolicy(t *testing.T) {
	ev := Evaluator(t, TrustedConfig+"  - name: no-privileged\n    enabled: false\n", "")
	obj := Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app", Privileged())}})
	d := ev.Evaluate(context.Background(), Create(obj))
	if !d.Allowed || len(d.Warnings) != 0 {
		t.Fatalf("got %+v", d)
	}
	for _, r := range d.Results {
		if r.Policy == "no-privileged" {
			t.Fatalf("a policy that is off was evaluated: %+v", r)
		}
	}
}

func TestObjectsWithoutPodSpecsStillEvaluated(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}, "data": map[string]any{"k": "v"}}
	d := ev.Evaluate(context.Background(), Create(cm))
	if !d.Allowed || len(d.Results) != 2 {
		t.Fatalf("allowed=%v results=%d, want allowed with both policies evaluated", d.Allowed, len(d.Results))
	}
}

func TestBadInputs(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	good := Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app")}})
	malformed := Object(Deployment, "shop", "web", PodSpec{})
	malformed["spec"].(map[string]any)["template"].(map[string]any)["spec"] = map[string]any{"containers": "not a list"}
	cases := []struct {
		name    string
		in      admission.Input
		code    int32
		allowed bool
		message string
	}{
		{"delete is not evaluated", withOp(Create(good), "DELETE", nil), 200, true, ""},
		{"unknown operation", withOp(Create(good), "PATCH", good), 400, false, `unknown operation "PATCH"`},
		{"no object", withOp(Create(good), "CREATE", nil), 400, false, "the request carries no object"},
		{"malformed pod spec", Create(malformed), 400, false, "cannot read the Deployment: spec.template.spec.containers: expected a list of containers, got a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ev.Evaluate(context.Background(), tc.in)
			if d.Code != tc.code || d.Allowed != tc.allowed || d.Message != tc.message {
				t.Fatalf("got code=%d allowed=%v message=%q", d.Code, d.Allowed, d.Message)
			}
		})
	}
}

func withOp(in admission.Input, op string, obj map[string]any) admission.Input {
	in.Request.Operation, in.Object = op, obj
	return in
}

func TestWarningsDeduplicatedAndCapped(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, policies.ModeAudit)
	var cs []Container
	for i := range 40 {
		cs = append(cs, NewContainer(fmt.Sprintf("c%02d", i), "gcr.io/company/app", Privileged()))
	}
	d := ev.Evaluate(context.Background(), Create(Object(Deployment, "shop", "web", PodSpec{Containers: cs})))
	if !d.Allowed || len(d.Violations) != 40 {
		t.Fatalf("allowed=%v violations=%d", d.Allowed, len(d.Violations))
	}
	total := 0
	for _, w := range d.Warnings {
		if len(w) > 256 {
			t.Errorf("warning longer than the API server keeps (%d bytes): %s", len(w), w)
		}
		total += len(w)
	}
	if total > 4096 {
		t.Errorf("warnings total %d bytes, more than the API server keeps", total)
	}
	last := d.Warnings[len(d.Warnings)-1]
	shown := len(d.Warnings) - 1
	want := fmt.Sprintf("and %d more warnings (see the decision log or run `attest policy check`)", 40-shown)
	if last != want {
		t.Fatalf("summary = %q, want %q", last, want)
	}
	var ann []map[string]any
	if err := json.Unmarshal([]byte(d.AuditAnnotations[admission.AnnotationViolations]), &ann); err != nil {
		t.Fatal(err)
	}
	if len(ann) != 21 || ann[20]["more"] != float64(20) {
		t.Fatalf("violations annotation not capped at 20 + summary: %d entries, last %v", len(ann), ann[len(ann)-1])
	}
}

func TestDenialMessageCapped(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	var cs []Container
	for i := range 25 {
		cs = append(cs, NewContainer(fmt.Sprintf("c%02d", i), "gcr.io/company/app", Privileged()))
	}
	d := ev.Evaluate(context.Background(), Create(Object(Pod, "shop", "web", PodSpec{Containers: cs})))
	lines := strings.Split(d.Message, "\n")
	if len(lines) != 21 || lines[20] != "and 5 more violations (run `attest policy check` on the manifest to list them all)" {
		t.Fatalf("message has %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestDuplicateWarningsCollapsed(t *testing.T) {
	// Two containers with the same name and path cannot exist, but a policy may report the same text twice
	// through its violation and warn rules; here two identical audit violations come from two policies' text.
	ev := Evaluator(t, TrustedConfig, policies.ModeAudit)
	obj := Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "quay.io/x/app", Privileged())}})
	d := ev.Evaluate(context.Background(), Create(obj))
	seen := map[string]bool{}
	for _, w := range d.Warnings {
		if seen[w] {
			t.Fatalf("duplicate warning %q", w)
		}
		seen[w] = true
	}
	if len(d.Warnings) != 2 {
		t.Fatalf("want one warning per policy, got %q", d.Warnings)
	}
}

func TestConfigReloadAppliesToNextRequest(t *testing.T) {
	e := Engine(t, Foundation...)
	strict, err := config.Parse([]byte(TrustedConfig), e)
	if err != nil {
		t.Fatal(err)
	}
	relaxed, err := config.Parse([]byte(TrustedConfig+"  - name: no-privileged\n    mode: audit\n"), e)
	if err != nil {
		t.Fatal(err)
	}
	current := strict
	ev, err := admission.New(admission.Options{Engine: e, Config: func() *config.Config { return current }})
	if err != nil {
		t.Fatal(err)
	}
	in := Create(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app", Privileged())}}))
	if d := ev.Evaluate(context.Background(), in); d.Allowed {
		t.Fatal("strict config allowed a privileged pod")
	}
	current = relaxed
	if d := ev.Evaluate(context.Background(), in); !d.Allowed {
		t.Fatalf("reloaded audit config still denies: %s", d.Message)
	}
}

func TestCancelledContextIsAnInternalFailure(t *testing.T) {
	ev := Evaluator(t, TrustedConfig, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := ev.Evaluate(ctx, Create(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", "gcr.io/company/app")}})))
	if d.Allowed || d.Code != 500 || !strings.Contains(d.Message, "could not finish evaluating policies") {
		t.Fatalf("got %+v", d)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	e := Engine(t)
	cfg := func() *config.Config { return config.Default(e) }
	for name, o := range map[string]admission.Options{
		"no engine": {Config: cfg},
		"no config": {Engine: e},
		"mode off":  {Engine: e, Config: cfg, Mode: policies.ModeOff},
		"mode typo": {Engine: e, Config: cfg, Mode: "audti"},
	} {
		if _, err := admission.New(o); err == nil {
			t.Errorf("%s: New accepted invalid options", name)
		}
	}
}
