package policies

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// planSeeds are input documents on which the library has work to do: a Deployment with a receipt and every image
// fact, a privileged Pod with unverified images and broken quantities, a CronJob in a production namespace.
func planSeeds(t testing.TB) []string {
	receipt := `{"version":1,"images":{"gcr.io/company/app:1.0":{"digest":"sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb","signer":"release-key","predicate_types":["https://slsa.dev/provenance/v1"],"verified_at":"2026-11-28T14:00:00Z"}}}`
	facts := map[string]any{"name": "gcr.io/company/app", "tag": "1.0", "reference": "gcr.io/company/app:1.0", "trusted_registry": true,
		"digest":       "sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb",
		"signature":    map[string]any{"verified": true, "signer": "release-key"},
		"attestations": map[string]any{"verified": true, "types": []any{"https://slsa.dev/provenance/v1"}}}
	ins := []struct {
		in     Input
		params map[string]any
	}{
		{Input{
			Request:   Request{Operation: "CREATE", Kind: "Deployment", Group: "apps", Version: "v1", Namespace: "shop", Name: "web", Username: "alice", TimestampNS: 1795874580000000000},
			Resource:  map[string]any{"metadata": map[string]any{"name": "web", "annotations": map[string]any{"attest.continuu.ms/receipt": receipt, "attest.continuu.ms/audit-logging": "enabled"}}, "spec": map[string]any{"replicas": 1}},
			Namespace: Namespace{Name: "shop", Labels: map[string]string{"environment": "production"}, Production: true},
			Containers: []Container{{Path: "spec.template.spec.containers[0]", Type: "container", Name: "app", Image: "gcr.io/company/app:1.0",
				Fields: map[string]any{"name": "app", "image": "gcr.io/company/app:1.0", "resources": map[string]any{"limits": map[string]any{"cpu": "2", "memory": "1Gi"}, "requests": map[string]any{"cpu": "100m"}}}}},
			Images: map[string]map[string]any{"gcr.io/company/app:1.0": facts},
		}, map[string]any{"trusted_registries": []any{"gcr.io/company"}, "require_limits": true, "max_cpu": "1", "max_memory": "512Mi", "min_replicas": 2,
			"default_limits": map[string]any{"cpu": "500m", "memory": "512Mi"}, "default_requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}},
		{Input{
			Request:   Request{Operation: "UPDATE", Kind: "Pod", Version: "v1", Namespace: "dev", Name: "p", Username: "bob"},
			Resource:  map[string]any{"metadata": map[string]any{"name": "p", "annotations": map[string]any{"attest.continuu.ms/receipt": "{not json"}}},
			Namespace: Namespace{Name: "dev"},
			Containers: []Container{
				{Path: "spec.containers[0]", Type: "container", Name: "c", Image: "nginx", Fields: map[string]any{"securityContext": map[string]any{"privileged": true}, "resources": map[string]any{"limits": map[string]any{"cpu": "lots", "memory": 5}}}},
				{Path: "spec.initContainers[0]", Type: "init", Name: "i", Image: "evil.io/x:latest", Fields: map[string]any{}},
			},
			Images: map[string]map[string]any{"nginx": {"name": "index.docker.io/library/nginx", "reference": "nginx", "trusted_registry": false},
				"evil.io/x:latest": {"error": "could not resolve", "tag": "latest", "reference": "evil.io/x:latest"}},
		}, map[string]any{"trusted_registries": []any{}, "require_limits": true}},
		{Input{
			Request:    Request{Operation: "CREATE", Kind: "CronJob", Group: "batch", Version: "v1", Namespace: "prod", Name: "nightly", Groups: []string{"developers"}},
			Resource:   map[string]any{"metadata": map[string]any{"name": "nightly", "labels": map[string]any{"gdpr.attest.continuu.ms/personal-data": "true"}}},
			Namespace:  Namespace{Name: "prod", Production: true, Annotations: map[string]string{"owner": "x"}},
			Containers: []Container{{Path: "spec.jobTemplate.spec.template.spec.containers[0]", Type: "container", Name: "job", Image: "gcr.io/company/job@sha256:1111111111111111111111111111111111111111111111111111111111111111", Fields: map[string]any{}}},
		}, map[string]any{"timezone": "Europe/Berlin", "windows": []any{map[string]any{"days": []any{"Mon"}, "start": "09:00", "end": "17:00"}}}},
	}
	var out []string
	for _, c := range ins {
		doc, err := NewDocument(c.in)
		if err != nil {
			t.Fatal(err)
		}
		params, err := ParamsTerm(c.params)
		if err != nil {
			t.Fatal(err)
		}
		js, err := ast.JSON(doc.input(inputReads{all: true}, params))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(js)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// FuzzPlanMatchesTopdown evaluates every library policy's rules (and patch) over an arbitrary input document with
// the plan and with topdown: the same values, and an error from both or neither.
func FuzzPlanMatchesTopdown(f *testing.F) {
	srcs, _, err := Library()
	if err != nil {
		f.Fatal(err)
	}
	e, err := Compile(context.Background(), srcs)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range planSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var raw any
		if json.Unmarshal([]byte(doc), &raw) != nil {
			return
		}
		v, err := ast.InterfaceToValue(raw)
		if err != nil {
			return
		}
		if _, ok := v.(ast.Object); !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, p := range e.Policies() {
			c, err := p.compiled()
			if err != nil {
				t.Fatal(err)
			}
			if pl := c.planNow(); pl.prog == nil {
				t.Fatalf("%s: not planned: %v", p.Name, pl.err)
			}
			queries := []struct {
				q     *rego.PreparedEvalQuery
				rules []string
			}{{&c.query, c.rules}}
			if c.patch != nil {
				queries = append(queries, struct {
					q     *rego.PreparedEvalQuery
					rules []string
				}{c.patch, []string{patchRule}})
			}
			for _, q := range queries {
				t0 := time.Now()
				want, wantErr := ruleJSON(c.evalRules(ctx, q.q, q.rules, ruleInput{value: v}, true))(q.rules)
				t1 := time.Now()
				got, gotErr := ruleJSON(c.evalRules(ctx, q.q, q.rules, ruleInput{value: v}, false))(q.rules)
				if ctx.Err() != nil {
					t.Fatalf("%s %v: took too long: topdown %s, plan %s", p.Name, q.rules, t1.Sub(t0), time.Since(t1))
				}
				if (wantErr == nil) != (gotErr == nil) {
					t.Fatalf("%s %v: topdown error %v, plan error %v", p.Name, q.rules, wantErr, gotErr)
				}
				if !reflect.DeepEqual(want, got) {
					t.Fatalf("%s %v:\nplan    %v\ntopdown %v", p.Name, q.rules, got, want)
				}
			}
		}
	})
}

// ruleJSON turns what evalRules returns into each rule's JSON value (nil when a rule was undefined), to compare the
// plan's values with topdown's.
func ruleJSON(values *ruleValues, err error) func(rules []string) (map[string]any, error) {
	return func(rules []string) (map[string]any, error) {
		if err != nil || values == nil {
			return nil, err
		}
		out := map[string]any{}
		for i, rule := range rules {
			v, err := values.json(i, rule)
			if err != nil {
				return nil, err
			}
			out[rule] = v
		}
		return out, nil
	}
}

// TestPrune keeps exactly the subtrees at the paths a policy reads: absent paths stay absent, a path through a
// value that is not an object leads nowhere, and a path read whole keeps all below it.
func TestPrune(t *testing.T) {
	obj := map[string]any{
		"metadata": map[string]any{"name": "web", "annotations": map[string]any{"a": "1"}, "uid": "u"},
		"spec":     map[string]any{"replicas": 3, "template": map[string]any{"spec": map[string]any{"containers": []any{}}}},
		"status":   "x",
	}
	cases := []struct {
		paths [][]string
		want  string
	}{
		{[][]string{{"metadata", "annotations"}}, `{"metadata": {"annotations": {"a": "1"}}}`},
		{[][]string{{"metadata", "annotations"}, {"metadata", "labels"}, {"metadata", "name"}, {"spec", "replicas"}}, `{"metadata": {"annotations": {"a": "1"}, "name": "web"}, "spec": {"replicas": 3}}`},
		{[][]string{{"metadata"}, {"spec", "template"}}, `{"metadata": {"annotations": {"a": "1"}, "name": "web", "uid": "u"}, "spec": {"template": {"spec": {"containers": []}}}}`},
		{[][]string{{"status", "phase"}, {"missing", "x"}}, `{}`},
	}
	shared := &pruner{} // one document's pruner, for every case: each subtree converted once, each case unchanged
	for _, tc := range cases {
		for _, pr := range []*pruner{{}, shared} {
			got := pr.prune(obj, tc.paths)
			if want := ast.MustParseTerm(tc.want); !got.Equal(want) {
				t.Errorf("paths %v: got %v, want %v", tc.paths, got, want)
			}
		}
	}
	a := shared.prune(obj, [][]string{{"metadata", "annotations"}})
	b := shared.prune(obj, [][]string{{"metadata", "annotations"}, {"spec", "replicas"}})
	at := func(t *ast.Term) *ast.Term {
		return t.Value.(ast.Object).Get(ast.StringTerm("metadata")).Value.(ast.Object).Get(ast.StringTerm("annotations"))
	}
	if at(a) != at(b) {
		t.Error("the annotations were converted again for another set of paths")
	}
	// Paths that would read alike joined by a separator stay apart.
	odd := map[string]any{"a\x00b": "joined", "a": map[string]any{"b": "nested"}}
	for paths, want := range map[string]string{"a\x00b": `{"a\u0000b": "joined"}`, "a.b": `{"a": {"b": "nested"}}`} {
		got := shared.prune(odd, [][]string{strings.Split(paths, ".")})
		if !got.Equal(ast.MustParseTerm(want)) {
			t.Errorf("paths %q: got %v, want %v", paths, got, want)
		}
	}
}

// TestPrunedInputOnlyForPaths gives a policy the pruned object only where its rules read paths below it.
func TestPrunedInputOnlyForPaths(t *testing.T) {
	doc, err := NewDocument(Input{Resource: map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"replicas": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	below := readsOf([][]string{{"request", "name"}, {"resource", "metadata", "name"}}, true)
	got := doc.input(below, ast.ObjectTerm()).(ast.Object).Get(ast.StringTerm("resource"))
	if want := ast.MustParseTerm(`{"metadata": {"name": "web"}}`); !got.Equal(want) {
		t.Errorf("pruned resource %v, want %v", got, want)
	}
	whole := readsOf([][]string{{"resource"}, {"resource", "metadata", "name"}}, true)
	got = doc.input(whole, ast.ObjectTerm()).(ast.Object).Get(ast.StringTerm("resource"))
	if want := ast.MustParseTerm(`{"metadata": {"name": "web"}, "spec": {"replicas": 1}}`); !got.Equal(want) {
		t.Errorf("whole resource %v, want %v", got, want)
	}
}
