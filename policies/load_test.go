package policies_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/continuums/attest/policies"
)

// TestLoadMatchesCompile checks that the library loaded for compilation on first use is the library compiled at
// once: the same catalogue, the same optional rules, and the same findings and patches on every golden case.
func TestLoadMatchesCompile(t *testing.T) {
	ctx := context.Background()
	srcs, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := policies.Load(srcs)
	if err != nil {
		t.Fatal(err)
	}
	compiled := library(t)
	if len(loaded.Policies()) != len(compiled.Policies()) {
		t.Fatalf("Load has %d policies, Compile %d", len(loaded.Policies()), len(compiled.Policies()))
	}
	for i, want := range compiled.Policies() {
		got := loaded.Policies()[i]
		if !reflect.DeepEqual(got.Metadata, want.Metadata) {
			t.Errorf("%s: Load's catalogue entry differs:\n got %+v\nwant %+v", want.Name, got.Metadata, want.Metadata)
		}
		if got.HasPatch() != want.HasPatch() || got.HasSample() != want.HasSample() {
			t.Errorf("%s: HasPatch, HasSample = %v, %v; want %v, %v", want.Name, got.HasPatch(), got.HasSample(), want.HasPatch(), want.HasSample())
		}
	}
	for _, tc := range messageCases {
		doc, err := policies.NewDocument(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var results [2]string
		for i, e := range []*policies.Engine{compiled, loaded} {
			p, _ := e.Lookup(tc.policy)
			s, err := p.NewSettings(policies.ModeEnforce, tc.params)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			findings, err := p.Eval(ctx, doc, s)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			ops, err := p.Patch(ctx, doc, s)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			out, _ := json.Marshal(map[string]any{"findings": findings, "patch": ops})
			results[i] = string(out)
		}
		if results[0] != results[1] {
			t.Errorf("%s: Compile gives %s\nLoad gives %s", tc.name, results[0], results[1])
		}
	}
}

// TestLoadReportsMetadataAtOnce checks that Load refuses what Compile refuses about the catalogue, with the same
// words.
func TestLoadReportsMetadataAtOnce(t *testing.T) {
	md := func(name, extra string) string {
		return "# METADATA\n# title: t\n# custom:\n#   name: " + name + "\n" + extra + "package custom." + strings.ReplaceAll(name, "-", "_") + "\n\nimport rego.v1\n\nviolation contains \"x\" if false\n"
	}
	cases := map[string][]policies.Source{
		"bad severity":   {{Name: "a.rego", Text: md("a", "#   severity: urgent\n")}},
		"bad name":       {{Name: "a.rego", Text: md("Not_A_Name", "")}},
		"duplicate name": {{Name: "a.rego", Text: md("same", "")}, {Name: "b.rego", Text: strings.Replace(md("same", ""), "custom.same", "custom.other", 1)}},
		"duplicate package": {{Name: "a.rego", Text: md("a", "")},
			{Name: "b.rego", Text: strings.Replace(md("b", ""), "custom.b", "custom.a", 1)}},
		"parameters not a schema": {{Name: "a.rego", Text: md("a", "#   parameters:\n#     n: 3\n")}},
		"header does not parse":   {{Name: "a.rego", Text: "package custom.a[\n\nviolation contains \"x\" if false\n"}},
	}
	for name, srcs := range cases {
		t.Run(name, func(t *testing.T) {
			_, want := policies.Compile(context.Background(), srcs)
			_, got := policies.Load(srcs)
			if want == nil || got == nil || got.Error() != want.Error() {
				t.Fatalf("Load: %v\nCompile: %v", got, want)
			}
		})
	}
}

// TestLoadCompilesOnUse checks what Load defers: a policy whose rules do not compile loads, reports Compile's
// error when it is evaluated, and does not keep the other policies from compiling.
func TestLoadCompilesOnUse(t *testing.T) {
	ctx := context.Background()
	broken := policies.Source{Name: "broken.rego", Text: "package custom.broken\n\nimport rego.v1\n\nviolation contains x if {\n  x := time.now_ns()\n}\n"}
	fine := policies.Source{Name: "fine.rego", Text: "package custom.fine\n\nimport rego.v1\n\nviolation contains \"always\" if true\n"}
	_, compileErr := policies.Compile(ctx, []policies.Source{broken})
	if compileErr == nil {
		t.Fatal("Compile accepted an impure policy")
	}
	e, err := policies.Load([]policies.Source{broken, fine})
	if err != nil {
		t.Fatal(err)
	}
	doc := evalDoc(t, policies.Input{})
	p, _ := e.Lookup("broken")
	if _, err := p.Eval(ctx, doc, p.DefaultSettings()); err == nil || !strings.Contains(err.Error(), compileErr.Error()) {
		t.Fatalf("Eval of a policy that does not compile: %v, want it to contain %q", err, compileErr)
	}
	if err := e.Prepare(); err == nil || !strings.Contains(err.Error(), compileErr.Error()) {
		t.Fatalf("Prepare: %v, want %q", err, compileErr)
	}
	if err := e.Prepare("fine"); err != nil {
		t.Fatal(err)
	}
	p, _ = e.Lookup("fine")
	if f, err := p.Eval(ctx, doc, p.DefaultSettings()); err != nil || len(f) != 1 {
		t.Fatalf("the other policy: %v, %v", f, err)
	}
}

// TestLoadCompilesReferencedPackages checks that a policy compiled on first use is compiled with the packages its
// rules refer to, and with a module that defines rules inside its package.
func TestLoadCompilesReferencedPackages(t *testing.T) {
	ctx := context.Background()
	srcs := []policies.Source{
		{Name: "a.rego", Text: "package custom.a\n\nimport rego.v1\n\nviolation contains msg if some msg in data.custom.b.messages\n"},
		{Name: "b.rego", Text: "package custom.b\n\nimport rego.v1\n\nmessages contains \"from b\"\n\nmessages contains sprintf(\"%d containers\", [count(input.containers)])\n\nviolation contains \"b\" if false\n"},
		{Name: "c.rego", Text: "package custom\n\nimport rego.v1\n\nd.violation contains \"from the parent package\"\n\nviolation contains \"parent\" if false\n"},
		{Name: "d.rego", Text: "package custom.d\n\nimport rego.v1\n\nviolation contains \"d\" if false\n"},
	}
	compiled, err := policies.Compile(ctx, srcs)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := policies.Load(srcs)
	if err != nil {
		t.Fatal(err)
	}
	doc := evalDoc(t, policies.Input{Containers: []policies.Container{{Path: "spec.containers[0]", Name: "app", Image: "app:1"}}})
	for _, name := range []string{"a", "d"} {
		var got [2][]policies.Finding
		for i, e := range []*policies.Engine{compiled, loaded} {
			p, ok := e.Lookup(name)
			if !ok {
				t.Fatalf("no policy %s", name)
			}
			if got[i], err = p.Eval(ctx, doc, p.DefaultSettings()); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got[0], got[1]) || len(got[0]) == 0 {
			t.Errorf("%s: Compile finds %v, Load finds %v", name, got[0], got[1])
		}
	}
}

// TestPolicyInputParts checks that a policy sees every part of the input it reads, however it reads it: by key,
// by a key computed at evaluation, through a function, or input as a whole.
func TestPolicyInputParts(t *testing.T) {
	ctx := context.Background()
	rules := map[string]string{
		"by key":      `violation contains k if { some k, _ in {"request": input.request, "resource": input.resource, "containers": input.containers} }`,
		"whole input": `violation contains k if { some k, _ in input }`,
		"dynamic key": `violation contains k if { some k in ["namespace", "images", "params", "old_resource"]; input[k] }`,
		"object.get":  `violation contains k if { some k in ["namespace", "images"]; object.get(input, k, false) }`,
		"imported":    "violation contains \"containers\" if count(cs) == 1",
	}
	in := policies.Input{
		Request:     policies.Request{Operation: "UPDATE"},
		Resource:    map[string]any{"kind": "Pod"},
		OldResource: map[string]any{"kind": "Pod"},
		Namespace:   policies.Namespace{Name: "shop"},
		Containers:  []policies.Container{{Path: "spec.containers[0]", Name: "app", Image: "app:1"}},
		Images:      map[string]map[string]any{"app:1": {"registry": "index.docker.io"}},
	}
	want := map[string][]string{
		"by key":      {"containers", "request", "resource"},
		"whole input": {"containers", "images", "namespace", "old_resource", "params", "request", "resource"},
		"dynamic key": {"images", "namespace", "old_resource", "params"},
		"object.get":  {"images", "namespace"},
		"imported":    {"containers"},
	}
	for name, rule := range rules {
		t.Run(name, func(t *testing.T) {
			src := policies.Source{Name: "p.rego", Text: "package custom.p\n\nimport rego.v1\n\nimport input.containers as cs\n\n" + rule + "\n"}
			for _, load := range []bool{false, true} {
				var e *policies.Engine
				var err error
				if load {
					e, err = policies.Load([]policies.Source{src})
				} else {
					e, err = policies.Compile(ctx, []policies.Source{src})
				}
				if err != nil {
					t.Fatal(err)
				}
				p, _ := e.Lookup("p")
				findings, err := p.Eval(ctx, evalDoc(t, in), p.DefaultSettings())
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range findings {
					got = append(got, f.Message)
				}
				if !reflect.DeepEqual(got, want[name]) {
					t.Errorf("load=%v: the policy sees %v, want %v", load, got, want[name])
				}
			}
		})
	}
}

// TestNewDocumentReportsConversionErrors checks that a value no policy could read is reported when the document
// is built, naming the field, whether or not a policy reads that part.
func TestNewDocumentReportsConversionErrors(t *testing.T) {
	cases := map[string]struct {
		in   policies.Input
		want string
	}{
		"resource":     {policies.Input{Resource: map[string]any{"spec": map[string]any{"replicas": []any{func() {}}}}}, "input.resource: "},
		"old resource": {policies.Input{OldResource: map[string]any{"f": func() {}}}, "input.old_resource: "},
		"container": {policies.Input{Containers: []policies.Container{{Path: "spec.containers[0]", Fields: map[string]any{
			"resources": map[string]any{"limits": make(chan int)}}}}}, "spec.containers[0].resources: "},
		"images": {policies.Input{Images: map[string]map[string]any{"app:1": {"digest": make(chan int)}}}, "input.images: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := policies.NewDocument(tc.in)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to start with %q", err, tc.want)
			}
		})
	}
	if _, err := policies.NewDocument(policies.Input{Resource: map[string]any{"n": json.Number("2"), "s": []string{"a"}}}); err != nil {
		t.Fatalf("values that convert: %v", err)
	}
}

// TestLoadConcurrentFirstUse evaluates every policy of a fresh Load engine from several goroutines at once, and
// sharing one document, as parallel checks and concurrent admissions do (run with -race).
func TestLoadConcurrentFirstUse(t *testing.T) {
	srcs, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.Load(srcs)
	if err != nil {
		t.Fatal(err)
	}
	doc := evalDoc(t, benchInput())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, p := range e.Policies() {
				if _, err := p.Eval(context.Background(), doc, p.DefaultSettings()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// TestConvertedValues checks that a value converted once reads in a policy exactly as the plain value does.
func TestConvertedValues(t *testing.T) {
	ctx := context.Background()
	e, err := policies.Compile(ctx, []policies.Source{{Name: "p.rego", Text: "package custom.p\n\nimport rego.v1\n\nviolation contains json.marshal(input.images)\n\nviolation contains \"builder\" if input.images[_].attestations[_].predicate.builder.id == \"b\"\n"}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Lookup("p")
	atts := func() any {
		return []any{map[string]any{"predicate_type": "slsa", "verified": true, "predicate": map[string]any{"builder": map[string]any{"id": "b"}, "n": 3.5, "l": []any{int64(1), "x", nil}}}}
	}
	converted, err := policies.Convert(atts())
	if err != nil {
		t.Fatal(err)
	}
	var got [2][]policies.Finding
	for i, a := range []any{atts(), converted} {
		doc := evalDoc(t, policies.Input{Images: map[string]map[string]any{"app:1": {"registry": "index.docker.io", "attestations": a}}})
		if got[i], err = p.Eval(ctx, doc, p.DefaultSettings()); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got[0], got[1]) || len(got[0]) != 2 {
		t.Fatalf("plain: %v\nconverted: %v", got[0], got[1])
	}
}
