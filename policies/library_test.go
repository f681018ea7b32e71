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
func library(t testing.TB) *policies.Engine {
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
	// The catalogue of DESIGN.md section 4: name, default mode, and whether the policy can mutate.
	want := []struct {
		name  string
		mode  policies.Mode
		patch bool
	}{
		{"change-window", policies.ModeOff, false},
		{"disallow-latest-tag", policies.ModeAudit, false},
		{"gdpr-annotations", policies.ModeAudit, false},
		{"no-privileged", policies.ModeEnforce, false},
		{"production-replicas", policies.ModeAudit, false},
		{"require-attestation", policies.ModeEnforce, false},
		{"require-receipt", policies.ModeAudit, false},
		{"resource-limits", policies.ModeAudit, true},
		{"soc2-audit-logging", policies.ModeAudit, false},
		{"trusted-registries", policies.ModeEnforce, false},
	}
	var names []string
	for _, p := range e.Policies() {
		names = append(names, p.Name)
	}
	if len(names) != len(want) {
		t.Errorf("library has %d policies %v, want %d", len(names), names, len(want))
	}
	for _, w := range want {
		p, ok := e.Lookup(w.name)
		if !ok {
			t.Errorf("library lacks %s", w.name)
			continue
		}
		if p.DefaultMode != w.mode {
			t.Errorf("%s: default mode %s, want %s", w.name, p.DefaultMode, w.mode)
		}
		if p.HasPatch() != w.patch {
			t.Errorf("%s: HasPatch = %v, want %v", w.name, p.HasPatch(), w.patch)
		}
		if p.HasSample() {
			t.Errorf("%s: the library samples nothing by default, but the policy defines sample", w.name)
		}
	}
}
