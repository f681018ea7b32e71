package policies

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func tableKey(i int) [sha256.Size]byte { return sha256.Sum256([]byte(fmt.Sprint(i))) }

func findingOf(i int) []Finding { return []Finding{{Message: fmt.Sprint("finding ", i)}} }

// TestMemoTable: a key answers what was stored under it, never another key's; a full table keeps its size and
// evicts a key not used since the hand last passed, keeping those read meanwhile.
func TestMemoTable(t *testing.T) {
	type step struct {
		op   string // add, get, miss
		key  int
		want int // the finding's number for get (and the one add stores)
	}
	tests := []struct {
		name  string
		size  int
		steps []step
		len   int
	}{
		{name: "stored and read", size: 4, steps: []step{{"add", 1, 1}, {"add", 2, 2}, {"get", 1, 1}, {"get", 2, 2}, {"miss", 3, 0}}, len: 2},
		{name: "a key stored again takes the new findings", size: 4, steps: []step{{"add", 1, 1}, {"add", 1, 9}, {"get", 1, 9}}, len: 1},
		{name: "full: the first key is evicted when none was read", size: 3,
			steps: []step{{"add", 1, 1}, {"add", 2, 2}, {"add", 3, 3}, {"add", 4, 4}, {"miss", 1, 0}, {"get", 2, 2}, {"get", 3, 3}, {"get", 4, 4}}, len: 3},
		{name: "full: a key read since the sweep survives, the next unread goes", size: 3,
			steps: []step{
				{"add", 1, 1}, {"add", 2, 2}, {"add", 3, 3},
				{"add", 4, 4}, // the sweep clears every bit; 1 goes; the hand is at 2
				{"get", 2, 2}, // 2 read again
				{"add", 5, 5}, // 2 is spared, 3 goes
				{"get", 2, 2}, {"miss", 3, 0}, {"get", 4, 4}, {"get", 5, 5}, {"miss", 1, 0},
			}, len: 3},
		{name: "size one", size: 1, steps: []step{{"add", 1, 1}, {"add", 2, 2}, {"miss", 1, 0}, {"get", 2, 2}}, len: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newMemoTable(tt.size)
			for i, s := range tt.steps {
				switch s.op {
				case "add":
					tab.add(tableKey(s.key), findingOf(s.want))
				case "get":
					got, ok := tab.get(tableKey(s.key))
					if !ok || len(got) != 1 || got[0].Message != findingOf(s.want)[0].Message {
						t.Errorf("step %d: get(%d) = %v, %v; want %q", i, s.key, got, ok, findingOf(s.want)[0].Message)
					}
				case "miss":
					if got, ok := tab.get(tableKey(s.key)); ok {
						t.Errorf("step %d: get(%d) = %v, want a miss", i, s.key, got)
					}
				}
			}
			if got := tab.len(); got != tt.len {
				t.Errorf("len = %d, want %d", got, tt.len)
			}
			if len(tab.index) != tab.len() {
				t.Errorf("the index holds %d keys for %d slots", len(tab.index), tab.len())
			}
			tab.purge()
			if tab.len() != 0 || len(tab.index) != 0 {
				t.Errorf("after purge: %d slots, %d keys", tab.len(), len(tab.index))
			}
			if _, ok := tab.get(tableKey(1)); ok {
				t.Error("after purge: a hit")
			}
		})
	}
}

// TestMemoTableConcurrent: under concurrent adds and gets past its size every hit is the key's own findings
// (run with -race).
func TestMemoTableConcurrent(t *testing.T) {
	tab := newMemoTable(64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i*7 + w) % 300
				if got, ok := tab.get(tableKey(k)); ok && got[0].Message != findingOf(k)[0].Message {
					t.Errorf("get(%d) = %q", k, got[0].Message)
					return
				}
				tab.add(tableKey(k), findingOf(k))
			}
		})
	}
	wg.Wait()
	if tab.len() != 64 || len(tab.index) != 64 {
		t.Errorf("%d slots, %d keys, want 64", tab.len(), len(tab.index))
	}
}

// BenchmarkMemoTableAddFull: storing a new key in a full table allocates nothing.
func BenchmarkMemoTableAddFull(b *testing.B) {
	tab := newMemoTable(memoSize)
	keys := make([][sha256.Size]byte, 4*memoSize)
	for i := range keys {
		keys[i] = tableKey(i)
		if i < memoSize {
			tab.add(keys[i], nil)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.add(keys[i%len(keys)], nil)
		i++
	}
}

// TestSharedTerms: a subtree converted once is shared by every conversion of an equal subtree, and is what
// converting it gives; subtrees a policy can tell apart are never shared; a long one is not kept.
func TestSharedTerms(t *testing.T) {
	resources := func(cpu any) map[string]any {
		return map[string]any{"limits": map[string]any{"cpu": cpu, "memory": "1Gi"}, "requests": map[string]any{"cpu": "100m"}}
	}
	first, err := sharedTerm(resources("500m"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := sharedTerm(resources("500m"))
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Error("equal subtrees were converted twice")
	}
	if want, _ := toTerm(resources("500m")); !first.Equal(want) {
		t.Errorf("shared %v, converted %v", first, want)
	}
	for name, v := range map[string]any{
		"another value":            resources("501m"),
		"a number for a string":    resources(int64(500)),
		"a float for an integer":   map[string]any{"n": 1.5},
		"null for an empty object": map[string]any{"limits": map[string]any(nil)},
		"an empty object":          map[string]any{"limits": map[string]any{}},
		"an array":                 []any{"500m"},
	} {
		got, err := sharedTerm(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := toTerm(v)
		if !got.Equal(want) {
			t.Errorf("%s: shared %v, want %v", name, got, want)
		}
	}
	long := map[string]any{"note": string(make([]byte, 2*maxSharedEncoding))}
	a, _ := sharedTerm(long)
	b, _ := sharedTerm(long)
	if a == b {
		t.Error("a subtree longer than maxSharedEncoding was kept")
	}
	many := map[string]any{}
	for i := range maxSharedNodes {
		many[fmt.Sprint("k", i)] = "v"
	}
	c, _ := sharedTerm(many)
	d, _ := sharedTerm(many)
	if c == d {
		t.Error("a subtree of more than maxSharedNodes values was kept")
	}
	if want, _ := toTerm(many); !c.Equal(want) {
		t.Errorf("a subtree too large to share: %v", c)
	}
	scalar, _ := sharedTerm("500m")
	if !scalar.Equal(ast.StringTerm("500m")) {
		t.Errorf("a scalar: %v", scalar)
	}
}

// TestSharedContainers converts a container of input.containers once while an equal one recurs, and never gives
// one container's conversion to a container that differs in what input.containers holds of it.
func TestSharedContainers(t *testing.T) {
	base := func() Container {
		return Container{Path: "spec.template.spec.containers[0]", PodPath: "spec.template.spec", Type: "container", Name: "app", Image: "nginx:1",
			Fields: map[string]any{"name": "app", "image": "nginx:1", "securityContext": map[string]any{"runAsNonRoot": true},
				"resources": map[string]any{"limits": map[string]any{"cpu": "500m"}}, "env": []any{map[string]any{"name": "A", "value": "1"}}}}
	}
	first, err := sharedContainer(base())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := containerTerm(base()); !first.Equal(want) {
		t.Fatalf("shared %v, converted %v", first, want)
	}
	same := base()
	same.Fields["env"] = []any{map[string]any{"name": "A", "value": "2"}} // not in input.containers
	if again, _ := sharedContainer(same); again != first {
		t.Error("an equal container (but for its environment) was converted again")
	}
	changes := map[string]func(c *Container){
		"path":            func(c *Container) { c.Path = "spec.template.spec.containers[1]" },
		"pod path":        func(c *Container) { c.PodPath = "spec" },
		"type":            func(c *Container) { c.Type = "init" },
		"name":            func(c *Container) { c.Name = "web" },
		"image":           func(c *Container) { c.Image = "nginx:2" },
		"securityContext": func(c *Container) { c.Fields["securityContext"] = map[string]any{"privileged": true} },
		"resources":       func(c *Container) { c.Fields["resources"] = map[string]any{"limits": map[string]any{"cpu": "1"}} },
		"no resources":    func(c *Container) { delete(c.Fields, "resources") },
	}
	for name, change := range changes {
		c := base()
		change(&c)
		got, err := sharedContainer(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want, _ := containerTerm(c); got == first || !got.Equal(want) {
			t.Errorf("%s: shared %v, want %v", name, got, want)
		}
	}
	big := base()
	big.Fields["securityContext"] = map[string]any{"note": string(make([]byte, 2*maxSharedEncoding))}
	a, _ := sharedContainer(big)
	b, _ := sharedContainer(big)
	if a == b {
		t.Error("a container longer than maxSharedEncoding was kept")
	}
	if want, _ := containerTerm(big); !a.Equal(want) {
		t.Errorf("a container too large to share: %v", a)
	}
	odd := base()
	odd.Fields["resources"] = map[string]any{"limits": make(chan int)}
	if _, err := sharedContainer(odd); err == nil {
		t.Error("a container whose resources do not convert was converted")
	}
}

// TestSharedRequestParts shares input.request.kind, input.request.user and input.namespace between admissions
// that carry the same, and never between admissions that differ in any field of them.
func TestSharedRequestParts(t *testing.T) {
	base := func() Input {
		return Input{
			Request: Request{UID: "u1", Operation: "CREATE", Group: "apps", Version: "v1", Kind: "Deployment", Name: "web",
				Namespace: "shop", Username: "dana", Groups: []string{"dev", "system:authenticated"}},
			Namespace: Namespace{Name: "shop", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"owner": "dana"}, Production: true},
		}
	}
	parts := func(in Input) (kind, user, ns *ast.Term) {
		d, err := NewDocument(in)
		if err != nil {
			t.Fatal(err)
		}
		req := d.term(partRequest).Value.(ast.Object)
		return req.Get(ast.StringTerm("kind")), req.Get(ast.StringTerm("user")), d.term(partNamespace)
	}
	kind, user, ns := parts(base())
	want := ast.MustParseTerm(`{"group": "apps", "version": "v1", "kind": "Deployment"}`)
	if !kind.Equal(want) {
		t.Fatalf("kind %v, want %v", kind, want)
	}
	if want := ast.MustParseTerm(`{"username": "dana", "groups": ["dev", "system:authenticated"]}`); !user.Equal(want) {
		t.Fatalf("user %v, want %v", user, want)
	}
	if want := ast.MustParseTerm(`{"name": "shop", "labels": {"team": "a"}, "annotations": {"owner": "dana"}, "production": true}`); !ns.Equal(want) {
		t.Fatalf("namespace %v, want %v", ns, want)
	}
	other := base()
	other.Request.UID, other.Request.Name = "u2", "api" // neither kind, user nor namespace
	k2, u2, n2 := parts(other)
	if k2 != kind || u2 != user || n2 != ns {
		t.Error("the same kind, user or namespace was converted again")
	}
	changes := map[string]struct {
		change func(in *Input)
		part   int // 0 kind, 1 user, 2 namespace
		want   string
	}{
		"group":             {func(in *Input) { in.Request.Group = "batch" }, 0, `{"group": "batch", "version": "v1", "kind": "Deployment"}`},
		"version":           {func(in *Input) { in.Request.Version = "v2" }, 0, `{"group": "apps", "version": "v2", "kind": "Deployment"}`},
		"kind":              {func(in *Input) { in.Request.Kind = "StatefulSet" }, 0, `{"group": "apps", "version": "v1", "kind": "StatefulSet"}`},
		"group and version": {func(in *Input) { in.Request.Group, in.Request.Version = "appsv1", "" }, 0, `{"group": "appsv1", "version": "", "kind": "Deployment"}`},
		"username":          {func(in *Input) { in.Request.Username = "erin" }, 1, `{"username": "erin", "groups": ["dev", "system:authenticated"]}`},
		"groups' order":     {func(in *Input) { in.Request.Groups = []string{"system:authenticated", "dev"} }, 1, `{"username": "dana", "groups": ["system:authenticated", "dev"]}`},
		"no groups":         {func(in *Input) { in.Request.Groups = nil }, 1, `{"username": "dana", "groups": []}`},
		"namespace name":    {func(in *Input) { in.Namespace.Name = "shop2" }, 2, `{"name": "shop2", "labels": {"team": "a"}, "annotations": {"owner": "dana"}, "production": true}`},
		"a label":           {func(in *Input) { in.Namespace.Labels = map[string]string{"team": "b"} }, 2, `{"name": "shop", "labels": {"team": "b"}, "annotations": {"owner": "dana"}, "production": true}`},
		"label for annotation": {func(in *Input) {
			in.Namespace.Labels, in.Namespace.Annotations = map[string]string{"owner": "dana"}, map[string]string{"team": "a"}
		}, 2, `{"name": "shop", "labels": {"owner": "dana"}, "annotations": {"team": "a"}, "production": true}`},
		"not production": {func(in *Input) { in.Namespace.Production = false }, 2, `{"name": "shop", "labels": {"team": "a"}, "annotations": {"owner": "dana"}, "production": false}`},
	}
	for name, tc := range changes {
		in := base()
		tc.change(&in)
		k, u, n := parts(in)
		got, before := [3]*ast.Term{k, u, n}[tc.part], [3]*ast.Term{kind, user, ns}[tc.part]
		if got == before || !got.Equal(ast.MustParseTerm(tc.want)) {
			t.Errorf("%s: %v, want %s", name, got, tc.want)
		}
	}
	big := base()
	big.Namespace.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(make([]byte, 2*maxSharedEncoding))}
	_, _, a := parts(big)
	_, _, b := parts(big)
	if a == b {
		t.Error("a namespace longer than maxSharedEncoding was kept")
	}
	if !a.Equal(b) {
		t.Errorf("a namespace too large to share: %v", a)
	}
}
