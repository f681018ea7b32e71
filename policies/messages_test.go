package policies_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The times of the change-window cases (UTC).
const (
	sat1403 = 1795874580000000000 // Sat 2026-11-28 14:03
	mon1000 = 1795428000000000000 // Mon 2026-11-23 10:00
)

const (
	digestA = "sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb"
	digestB = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	slsa    = "https://slsa.dev/provenance/v1"
)

// in is the input of one golden case: a Deployment "web" in the production namespace "shop", created by alice
// on a Saturday afternoon, with one container "app" running a verified image unless the case says otherwise.
type in struct {
	kind        string
	annotations map[string]any
	labels      map[string]any
	spec        map[string]any
	containers  []policies.Container
	images      map[string]map[string]any
	groups      []string
	production  bool
	ts          int64
}

func deployment(opts ...func(*in)) policies.Input {
	c := in{
		kind:        "Deployment",
		annotations: map[string]any{},
		labels:      map[string]any{"app": "web"},
		spec:        map[string]any{"replicas": float64(3)},
		containers:  []policies.Container{ctr("spec.template.spec.containers[0]", "app", "gcr.io/company/app:1.0", limits("1", "1Gi"))},
		images:      map[string]map[string]any{"gcr.io/company/app:1.0": verified("gcr.io/company/app", "1.0")},
		groups:      []string{"developers"},
		production:  true,
		ts:          mon1000,
	}
	for _, o := range opts {
		o(&c)
	}
	return policies.Input{
		Request: policies.Request{
			Operation: "CREATE", Group: "apps", Version: "v1", Kind: c.kind, Namespace: "shop", Name: "web",
			Username: "alice", Groups: c.groups, TimestampNS: c.ts,
		},
		Resource: map[string]any{
			"apiVersion": "apps/v1", "kind": c.kind,
			"metadata": map[string]any{"name": "web", "namespace": "shop", "labels": c.labels, "annotations": c.annotations},
			"spec":     c.spec,
		},
		Namespace:  policies.Namespace{Name: "shop", Production: c.production},
		Containers: c.containers,
		Images:     c.images,
	}
}

func ctr(path, name, image string, fields map[string]any) policies.Container {
	typ := "container"
	switch {
	case strings.Contains(path, "initContainers"):
		typ = "init"
	case strings.Contains(path, "ephemeralContainers"):
		typ = "ephemeral"
	}
	return policies.Container{Path: path, PodPath: path[:strings.LastIndex(path, ".")], Type: typ, Name: name, Image: image, Fields: fields}
}

func limits(cpu, memory string) map[string]any {
	return map[string]any{"resources": map[string]any{"limits": map[string]any{"cpu": cpu, "memory": memory}}}
}

// verified is what ATTEST knows of an image that passes every policy: parsed, trusted, signed, attested.
func verified(name, tag string) map[string]any {
	return map[string]any{
		"name": name, "registry": name[:strings.IndexByte(name, '/')], "repository": name[strings.IndexByte(name, '/')+1:],
		"tag": tag, "digest": digestA, "trusted_registry": true,
		"trust":        map[string]any{"policy": "company", "no_match": "deny", "checked": true, "error": "", "required_attestations": []any{slsa}},
		"signature":    map[string]any{"verified": true, "signer": "release-key", "authority": "release-key", "error": ""},
		"attestations": []any{map[string]any{"predicate_type": slsa, "verified": true, "signer": "release-key", "predicate": map[string]any{}, "error": ""}},
	}
}

// facts edits the facts of the case's one image.
func facts(edit func(map[string]any)) func(*in) {
	return func(c *in) { edit(c.images["gcr.io/company/app:1.0"]) }
}

func annotate(kv ...string) func(*in) {
	return func(c *in) {
		for i := 0; i+1 < len(kv); i += 2 {
			c.annotations[kv[i]] = kv[i+1]
		}
	}
}

func receipt(images map[string]any) string {
	b, err := json.Marshal(map[string]any{"version": 1, "images": images})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func receiptEntry(digest, signer string) map[string]any {
	return map[string]any{"digest": digest, "signer": signer, "predicate_types": []any{slsa}, "verified_at": "2026-11-23T09:59:00Z"}
}

const receiptKey = "attest.continuu.ms/receipt"

// messageCases holds one input per kind of finding of every library policy.
var messageCases = []struct {
	name   string
	policy string
	params map[string]any
	in     policies.Input
}{
	{"privileged container", "no-privileged", nil, deployment(func(c *in) {
		c.containers = append(c.containers, ctr("spec.template.spec.initContainers[0]", "setup", "gcr.io/company/app:1.0", map[string]any{"securityContext": map[string]any{"privileged": true}}))
	})},

	{"untrusted registry", "trusted-registries", map[string]any{"trusted_registries": []any{"gcr.io/company", "quay.io/company"}}, deployment(facts(func(f map[string]any) { f["trusted_registry"] = false; f["name"] = "gcr.io/company/app" }))},
	{"unparseable image", "trusted-registries", map[string]any{"trusted_registries": []any{"gcr.io/company"}}, deployment(func(c *in) {
		c.containers[0].Image = "gcr.io/Company/App"
		c.images = map[string]map[string]any{"gcr.io/Company/App": {"error": "could not parse reference: gcr.io/Company/App"}}
	})},
	{"no facts", "trusted-registries", map[string]any{"trusted_registries": []any{"gcr.io/company"}}, deployment(func(c *in) { c.images = map[string]map[string]any{} })},
	{"no trusted registries configured", "trusted-registries", nil, deployment(facts(func(f map[string]any) { f["trusted_registry"] = false }))},

	{"latest tag", "disallow-latest-tag", nil, deployment(func(c *in) {
		c.containers[0].Image = "nginx"
		c.images = map[string]map[string]any{"nginx": {"name": "index.docker.io/library/nginx", "tag": "latest", "digest": "", "trusted_registry": true}}
	})},
	{"neither tag nor digest", "disallow-latest-tag", nil, deployment(facts(func(f map[string]any) { f["tag"] = ""; f["digest"] = "" }))},

	{"image not parsed", "require-attestation", nil, deployment(func(c *in) {
		c.containers[0].Image = "gcr.io/Company/App"
		c.images = map[string]map[string]any{"gcr.io/Company/App": {"error": "could not parse reference: gcr.io/Company/App"}}
	})},
	{"no verification result", "require-attestation", nil, deployment(facts(func(f map[string]any) { delete(f, "trust") }))},
	{"no trust policy, deny", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["trust"] = map[string]any{"policy": "", "no_match": "deny", "checked": false, "error": "", "required_attestations": []any{}}
	}))},
	{"no trust policy, audit", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["trust"] = map[string]any{"policy": "", "no_match": "audit", "checked": false, "error": "", "required_attestations": []any{}}
	}))},
	{"registry unreachable", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["trust"].(map[string]any)["checked"] = false
		f["trust"].(map[string]any)["error"] = "registry gcr.io did not answer within 2s"
	}))},
	{"offline", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["digest"] = ""
		f["trust"].(map[string]any)["checked"] = false
		f["trust"].(map[string]any)["error"] = "not checked (--offline)"
	}))},
	{"no signature", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["signature"] = map[string]any{"verified": false, "signer": "", "authority": "", "error": "no signature from authority 'release-key'"}
	}))},
	{"attestation missing", "require-attestation", nil, deployment(facts(func(f map[string]any) { f["attestations"] = []any{} }))},
	{"attestation missing, as the verifier words it", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["trust"].(map[string]any)["error"] = "attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)"
		f["attestations"] = []any{map[string]any{"predicate_type": slsa, "verified": false, "signer": "", "predicate": nil, "error": "attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)"}}
	}))},
	{"failure this policy does not know", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["trust"].(map[string]any)["error"] = "digest mismatch between manifest and signature"
	}))},
	{"attestation invalid", "require-attestation", nil, deployment(facts(func(f map[string]any) {
		f["attestations"] = []any{map[string]any{"predicate_type": slsa, "verified": false, "error": "predicate check failed: builder.id is not https://ci.company.com"}}
	}))},

	{"no receipt", "require-receipt", nil, deployment()},
	{"receipt not JSON", "require-receipt", nil, deployment(annotate(receiptKey, "{images: app}"))},
	{"receipt version", "require-receipt", nil, deployment(annotate(receiptKey, `{"version": 2, "images": {}}`))},
	{"receipt without images", "require-receipt", nil, deployment(annotate(receiptKey, `{"version": 1}`))},
	{"receipt misses an image", "require-receipt", nil, deployment(annotate(receiptKey, receipt(map[string]any{})))},
	{"receipt entry malformed", "require-receipt", nil, deployment(annotate(receiptKey, receipt(map[string]any{
		"gcr.io/company/app:1.0": map[string]any{"digest": "sha256:abc", "signer": "", "predicate_types": "slsa", "verified_at": "yesterday"},
	})))},
	{"receipt for another digest", "require-receipt", nil, deployment(annotate(receiptKey, receipt(map[string]any{"gcr.io/company/app:1.0": receiptEntry(digestB, "release-key")})))},
	{"receipt, no resolved digest", "require-receipt", nil, deployment(
		annotate(receiptKey, receipt(map[string]any{"gcr.io/company/app:1.0": receiptEntry(digestA, "release-key")})),
		facts(func(f map[string]any) { f["digest"] = "" }),
	)},
	{"receipt for an unverified digest", "require-receipt", nil, deployment(
		annotate(receiptKey, receipt(map[string]any{"gcr.io/company/app:1.0": receiptEntry(digestA, "release-key")})),
		facts(func(f map[string]any) { f["signature"] = map[string]any{"verified": false, "error": "no signature"} }),
	)},
	{"receipt names another signer", "require-receipt", nil, deployment(annotate(receiptKey, receipt(map[string]any{"gcr.io/company/app:1.0": receiptEntry(digestA, "someone")})))},

	{"too few replicas", "production-replicas", nil, deployment(func(c *in) { c.spec = map[string]any{"replicas": float64(1)} })},
	{"replicas unset", "production-replicas", nil, deployment(func(c *in) { c.kind = "StatefulSet"; c.spec = map[string]any{} })},

	{"audit logging missing", "soc2-audit-logging", nil, deployment()},
	{"audit logging disabled", "soc2-audit-logging", nil, deployment(annotate("attest.continuu.ms/audit-logging", "disabled"))},

	{"gdpr annotations missing", "gdpr-annotations", nil, deployment(func(c *in) { c.labels["gdpr.attest.continuu.ms/personal-data"] = "true" })},
	{"gdpr retention not a duration", "gdpr-annotations", nil, deployment(annotate(
		"gdpr.attest.continuu.ms/personal-data", "true",
		"gdpr.attest.continuu.ms/lawful-basis", "contract",
		"gdpr.attest.continuu.ms/data-controller", "Example GmbH",
		"gdpr.attest.continuu.ms/retention-period", "30 days",
	))},

	{"no limits", "resource-limits", nil, deployment(func(c *in) {
		c.containers = []policies.Container{
			ctr("spec.template.spec.initContainers[0]", "migrate", "gcr.io/company/app:1.0", map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "2"}}}),
			ctr("spec.template.spec.containers[0]", "app", "gcr.io/company/app:1.0", nil),
			ctr("spec.template.spec.containers[1]", "proxy", "gcr.io/company/app:1.0", map[string]any{"resources": map[string]any{"limits": map[string]any{"cpu": "250m"}}}),
		}
	})},
	{"invalid quantity", "resource-limits", nil, deployment(func(c *in) { c.containers[0].Fields = limits("2 cores", "1GB") })},
	{"above the maximum", "resource-limits", map[string]any{"max_cpu": "2", "max_memory": "1000Mi"}, deployment(func(c *in) { c.containers[0].Fields = limits("2500m", "1Gi") })},
	{"request above the maximum", "resource-limits", map[string]any{"require_limits": false, "max_cpu": "2"}, deployment(func(c *in) {
		c.containers[0].Fields = map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "4"}}}
	})},

	{"outside the window", "change-window", map[string]any{"emergency_groups": []any{"sre-oncall"}}, deployment(func(c *in) { c.ts = sat1403 })},
	{"frozen", "change-window", map[string]any{"windows": []any{}}, deployment()},
	{"unknown time zone", "change-window", map[string]any{"windows": []any{map[string]any{"days": []any{"Mon"}, "start": "08:00", "end": "18:00", "timezone": "Mars/Olympus_Mons"}}}, deployment()},
	{"emergency approval from outside the groups", "change-window", map[string]any{"emergency_groups": []any{"sre-oncall"}}, deployment(
		func(c *in) { c.ts = sat1403 }, annotate("attest.continuu.ms/approval-id", "EMERGENCY-123"),
	)},
	{"emergency change", "change-window", map[string]any{"emergency_groups": []any{"sre-oncall"}}, deployment(
		func(c *in) { c.ts = sat1403; c.groups = []string{"developers", "sre-oncall"} }, annotate("attest.continuu.ms/approval-id", "EMERGENCY-123"),
	)},
}

// TestMessagesGolden renders every finding of messageCases as the admission response words it,
// `[<policy>] <path> (<container>): <problem>; <fix>`, with the JSON Patch of policies that define one, and
// compares the lot with testdata/messages.golden (go test -update rewrites it).
// TestMessagesGolden writes every case's findings and patch, evaluated through the plans admissions use and again
// with topdown (each with an engine of its own, so no memo carries a result across): both give the golden file.
func TestMessagesGolden(t *testing.T) {
	for _, planned := range []bool{true, false} {
		t.Run(fmt.Sprintf("planned=%v", planned), func(t *testing.T) {
			e := library(t)
			if planned {
				e.Plan()
				for _, p := range e.Policies() {
					if ok, err := p.Planned(); !ok {
						t.Fatalf("%s is not planned: %v", p.Name, err)
					}
				}
			}
			e.SetPlanned(planned)
			golden(t, "messages.golden", messages(t, e))
		})
	}
}

// messages evaluates every message case with e.
func messages(t *testing.T, e *policies.Engine) string {
	ctx := context.Background()
	var b strings.Builder
	covered := map[string]bool{}
	for _, tc := range messageCases {
		p, ok := e.Lookup(tc.policy)
		if !ok {
			t.Fatalf("%s: no policy %s", tc.name, tc.policy)
		}
		covered[tc.policy] = true
		s, err := p.NewSettings(policies.ModeEnforce, tc.params)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		doc, err := policies.NewDocument(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		findings, err := p.Eval(ctx, doc, s)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(findings) == 0 {
			t.Errorf("%s: %s reports nothing", tc.name, tc.policy)
		}
		b.WriteString("== " + tc.policy + ": " + tc.name + "\n")
		for _, f := range findings {
			b.WriteString(format(tc.policy, tc.in.Containers, f) + "\n")
		}
		ops, err := p.Patch(ctx, doc, s)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(ops) > 0 {
			js, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("patch: " + string(js) + "\n")
		}
		b.WriteString("\n")
	}
	for _, p := range e.Policies() {
		if !covered[p.Name] {
			t.Errorf("policy %s has no golden message case", p.Name)
		}
	}
	return b.String()
}

// format is the admission layer's message format, written out here because policies cannot import admission.
func format(policy string, cs []policies.Container, f policies.Finding) string {
	var b strings.Builder
	if f.Warning {
		b.WriteString("warn: ")
	}
	b.WriteString("[" + policy + "]")
	if f.Path != "" {
		b.WriteString(" " + f.Path)
	}
	for _, c := range cs {
		if f.Path == c.Path || strings.HasPrefix(f.Path, c.Path+".") {
			b.WriteString(" (" + c.Name + ")")
			break
		}
	}
	b.WriteString(": " + f.Message)
	if f.Fix != "" {
		b.WriteString("; " + f.Fix)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}
