package policies_test

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

// TestLibraryRegoTests runs every Rego unit test of the embedded library, and fails if a policy has no tests
// or no METADATA.
func TestLibraryRegoTests(t *testing.T) {
	ctx := context.Background()
	srcs, tests, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatal("the embedded library has no policies")
	}
	testFiles := map[string]bool{}
	for _, ts := range tests {
		testFiles[ts.Name] = true
	}
	for _, src := range srcs {
		if !strings.Contains(src.Text, "# METADATA") {
			t.Errorf("%s has no METADATA block", src.Name)
		}
		want := strings.TrimSuffix(src.Name, path.Ext(src.Name)) + "_test.rego"
		if !testFiles[want] {
			t.Errorf("%s has no Rego tests (%s)", src.Name, want)
		}
	}
	results, err := policies.RunTests(ctx, srcs, tests)
	if err != nil {
		t.Fatal(err)
	}
	perFile := map[string]int{}
	for _, r := range results {
		perFile[r.File]++
		if !r.Pass {
			t.Errorf("%s:%d %s.%s failed (err=%v)", r.File, r.Row, r.Package, r.Name, r.Err)
		}
	}
	for file := range testFiles {
		if perFile[file] == 0 {
			t.Errorf("%s defines no test_ rules", file)
		}
	}
}

// library compiles the embedded policies.
func library(t *testing.T) *policies.Engine {
	t.Helper()
	srcs, _, err := policies.Library()
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.Compile(context.Background(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLibraryCatalogue(t *testing.T) {
	e := library(t)
	for _, p := range e.Policies() {
		if p.Title == "" || p.Description == "" || p.Remediation == "" {
			t.Errorf("%s: METADATA needs title, description and custom.remediation", p.Name)
		}
	}
	for _, name := range []string{"no-privileged", "trusted-registries"} {
		if _, ok := e.Lookup(name); !ok {
			t.Errorf("library lacks %s", name)
		}
	}
}
