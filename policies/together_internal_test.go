package policies

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// togetherEngine compiles one policy per body, named p0, p1, … in that order (the engine's order).
func togetherEngine(t *testing.T, bodies ...string) *Engine {
	t.Helper()
	var srcs []Source
	for i, body := range bodies {
		src := fmt.Sprintf("# METADATA\n# title: t\n# custom:\n#   name: p%d\npackage custom.p%d\n\nimport rego.v1\n\n%s\n", i, i, body)
		srcs = append(srcs, Source{Name: fmt.Sprintf("p%d.rego", i), Text: src})
	}
	e, err := Compile(context.Background(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestReadTogether gives the policies of one admission that read only some of the object one pruned object
// holding everything they read, and every policy the findings it has with its own pruned object.
func TestReadTogether(t *testing.T) {
	e := togetherEngine(t,
		`violation contains {"message": sprintf("labels %v", [input.resource.metadata.labels])} if input.resource.metadata.labels`,
		`violation contains {"message": sprintf("%s has %d", [input.resource.metadata.name, input.resource.spec.replicas])} if input.resource.spec.replicas < 3`,
		`violation contains {"message": sprintf("%d spec keys", [count(object.get(input.resource, "spec", {}))])} if true`,
		`violation contains {"message": sprintf("%d containers", [count(input.containers)])} if true`,
		`violation contains {"message": sprintf("labels again %v, status %v", [input.resource.metadata.labels, input.resource.status])} if input.resource.metadata.labels`,
	)
	obj := map[string]any{
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web"}, "uid": "u"},
		"spec":     map[string]any{"replicas": 1, "template": map[string]any{}},
		"status":   map[string]any{"ready": 1},
	}
	newDoc := func() *Document {
		d, err := NewDocument(Input{Resource: obj, Containers: []Container{{Path: "spec.containers[0]", Name: "app", Image: "nginx:1"}}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	e.SetMemo(false) // every evaluation below evaluates
	// eval evaluates the policies of which (bit i: the engine's i-th).
	eval := func(d *Document, which uint64) map[string][]Finding {
		out := map[string][]Finding{}
		for i, p := range e.Policies() {
			if which&(1<<i) == 0 {
				continue
			}
			f, err := p.Eval(context.Background(), d, Settings{})
			if err != nil {
				t.Fatal(err)
			}
			out[p.Name] = f
		}
		return out
	}
	all := uint64(1)<<len(e.Policies()) - 1
	alone := eval(newDoc(), all)
	if len(alone["p1"]) != 1 || alone["p1"][0].Message != "web has 1" {
		t.Fatalf("p1 alone found %v", alone["p1"])
	}
	cases := []struct {
		name      string
		which     uint64
		wantPaths string // the shared paths of input.resource; "" when none are shared
		members   int
	}{
		{"every policy: the three partial readers share", all, "input.metadata.labels, input.metadata.name, input.spec.replicas, input.status", 3},
		{"two partial readers", 1<<0 | 1<<1, "input.metadata.labels, input.metadata.name, input.spec.replicas", 2},
		{"a path read twice is kept once", 1<<0 | 1<<4, "input.metadata.labels, input.status", 2},
		{"one partial reader and the whole reader share nothing", 1<<1 | 1<<2, "", 0},
		{"one policy", 1 << 1, "", 0},
		{"none", 0, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDoc()
			d.ReadTogether(e, tc.which)
			s := d.shared[partResource]
			switch {
			case tc.wantPaths == "" && s != nil:
				t.Fatalf("shared %s, want nothing shared", pathsString(s.paths))
			case tc.wantPaths != "" && s == nil:
				t.Fatalf("nothing shared, want %s", tc.wantPaths)
			case s != nil && (pathsString(s.paths) != tc.wantPaths || len(s.members) != tc.members):
				t.Fatalf("shared %s for %d policies, want %s for %d", pathsString(s.paths), len(s.members), tc.wantPaths, tc.members)
			}
			want := map[string][]Finding{}
			for i, p := range e.Policies() {
				if tc.which&(1<<i) != 0 {
					want[p.Name] = alone[p.Name]
				}
			}
			if got := eval(d, tc.which); !reflect.DeepEqual(got, want) {
				t.Errorf("findings %v, want each policy's alone %v", got, want)
			}
			if s != nil && len(d.prunedTerms) != 1 {
				t.Errorf("%d pruned objects built, want the one shared", len(d.prunedTerms))
			}
			// A policy that was not named reads its own paths, not the shared ones.
			if got := eval(d, all); !reflect.DeepEqual(got, alone) {
				t.Errorf("every policy after those named: findings %v, want %v", got, alone)
			}
		})
	}

	// The same set of policies is worked out once per engine.
	d1, d2 := newDoc(), newDoc()
	d1.ReadTogether(e, all)
	d2.ReadTogether(e, all)
	if d1.shared != d2.shared {
		t.Error("the shared paths were worked out again for the same policies")
	}
	// What one policy is given still holds everything it reads, and nothing of the part it does not share.
	got := d1.input(mustCompiled(t, e, "p0").reads, ast.ObjectTerm()).(ast.Object).Get(ast.StringTerm("resource"))
	want := ast.MustParseTerm(`{"metadata": {"labels": {"app": "web"}, "name": "web"}, "spec": {"replicas": 1}, "status": {"ready": 1}}`)
	if !got.Equal(want) {
		t.Errorf("p0 given %v, want %v", got, want)
	}
}

// TestReadTogetherManyPolicies leaves each policy its own pruned object in an engine a mask cannot name.
func TestReadTogetherManyPolicies(t *testing.T) {
	bodies := make([]string, togetherMax+1)
	for i := range bodies {
		bodies[i] = `violation contains {"message": input.resource.metadata.name} if false`
	}
	e := togetherEngine(t, bodies...)
	d, err := NewDocument(Input{Resource: map[string]any{"metadata": map[string]any{"name": "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	d.ReadTogether(e, ^uint64(0))
	if d.shared != nil {
		t.Errorf("shared %v in an engine of %d policies", d.shared, len(e.Policies()))
	}
}

func mustCompiled(t *testing.T, e *Engine, name string) *compiled {
	t.Helper()
	p, ok := e.Lookup(name)
	if !ok {
		t.Fatalf("no policy %s", name)
	}
	c, err := p.compiled()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
