package gatekeeper

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/continuums/attest/policies"
)

// TestReviewMemo: the constraint policies of one document share one review, kept while the document lives and
// dropped once it is collected.
func TestReviewMemo(t *testing.T) {
	ctx := context.Background()
	s, err := NewSet(Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/requiredlabels/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddTemplate(ctx, tmpl, "t"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		k, err := ParseConstraint([]byte("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AttestRequiredLabels\nmetadata:\n  name: " + name + "\nspec:\n  parameters:\n    labels: [{key: owner}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddConstraint(ctx, k, name); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := s.Policies()
	if err != nil {
		t.Fatal(err)
	}
	evalAll := func() {
		doc, err := policies.NewDocument(policies.Input{
			Request:  policies.Request{Operation: "CREATE", Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "x"},
			Resource: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x", "namespace": "shop"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.reviewOnce(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			fs, err := p.Eval(ctx, doc, p.DefaultSettings())
			if err != nil || len(fs) != 1 {
				t.Fatalf("%s: %v, %v", p.Name, fs, err)
			}
		}
		again, _ := s.reviewOnce(ctx, doc)
		if len(first) != 3 || &first[0] != &again[0] {
			t.Errorf("the document was reviewed more than once (%d results)", len(first))
		}
		if n := s.memo.size(); n != 1 {
			t.Errorf("memo holds %d reviews while one document lives, want 1", n)
		}
		runtime.KeepAlive(doc)
	}
	evalAll()
	deadline := time.Now().Add(10 * time.Second)
	for s.memo.size() > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.memo.size(); n != 0 {
		t.Errorf("memo holds %d reviews after the document was collected", n)
	}
}
