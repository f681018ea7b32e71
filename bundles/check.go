package bundles

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/continuums/attest/policies"
)

// Checked is a bundle that compiled with the library and whose tests all passed: what may be loaded.
type Checked struct {
	// Policies are the bundle's policies, compiled with (but not including) the library.
	Policies []*policies.Policy
	// Sources are the bundle's policy sources, named as in Policies' File.
	Sources []policies.Source
	// Tests are the results of the bundle's Rego tests, every one passed.
	Tests []policies.TestResult
}

// Loaded is a verified and checked bundle of a policy source, ready to join the engine.
type Loaded struct {
	// Source names the policy source.
	Source string
	// Digest is the bundle artifact's digest; Signer who signed it.
	Digest, Signer string
	Policies       []*policies.Policy
}

// TestFailure is the error of a bundle whose Rego tests do not all pass.
type TestFailure struct {
	Failed []policies.TestResult
	Total  int
}

func (e *TestFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d bundle tests failed:", len(e.Failed), e.Total)
	for _, r := range e.Failed {
		fmt.Fprintf(&b, " %s:%d %s.%s", r.File, r.Row, r.Package, r.Name)
		if r.Err != nil {
			fmt.Fprintf(&b, " (%v)", r.Err)
		}
		b.WriteString(";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Check compiles the bundle's Rego policies together with lib (the embedded library, so that a name or package
// clash with a library policy is refused, never shadowed), checks that every package lies under the manifest's
// roots, and runs the bundle's Rego tests under the admission capabilities. prefix names the bundle in the
// policies' File ("<prefix>/<path>"). Any failure refuses the whole bundle: a bundle loads entirely or not at all.
func (b *Bundle) Check(ctx context.Context, lib []policies.Source, prefix string) (*Checked, error) {
	for _, f := range b.Files {
		kind, _ := f.Kind()
		switch kind {
		case KindGatekeeper, KindCedar:
			// Refused rather than skipped: a reviewer signed the bundle expecting these to apply.
			return nil, fmt.Errorf("%s: %s files in bundles are not loaded yet; ship the Rego policies alone", f.Path, kind)
		case KindData:
			if !emptyObject(f.Data) {
				return nil, fmt.Errorf("%s: policies read their parameters from input.params (Policy, PolicyConfig, the config file); a bundle's data.json must be {}", f.Path)
			}
		}
	}
	srcs := sources(b.ByKind(KindRego), prefix)
	tests := sources(b.ByKind(KindRegoTest), prefix)
	if len(srcs) == 0 {
		return nil, errors.New("the bundle holds no Rego policy")
	}
	e, err := policies.Compile(ctx, append(append([]policies.Source(nil), lib...), srcs...))
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	mine := map[string]bool{}
	for _, s := range srcs {
		mine[s.Name] = true
	}
	out := &Checked{Sources: srcs}
	for _, p := range e.Policies() {
		if !mine[p.File] {
			continue
		}
		if !b.underRoots(p.Package) {
			return nil, fmt.Errorf("%s: package %s lies outside the manifest's roots %q", p.File, p.Package, b.Manifest.Roots)
		}
		out.Policies = append(out.Policies, p)
	}
	if len(tests) == 0 {
		return nil, errors.New("the bundle holds no Rego test (_test.rego): a bundle ships tested policies")
	}
	results, err := policies.RunTests(ctx, append(append([]policies.Source(nil), lib...), srcs...), tests)
	if err != nil {
		return nil, fmt.Errorf("tests: %w", err)
	}
	fail := &TestFailure{}
	for _, r := range results {
		fail.Total++
		if !r.Pass {
			fail.Failed = append(fail.Failed, r)
		}
		out.Tests = append(out.Tests, r)
	}
	if fail.Total == 0 {
		return nil, errors.New("the bundle's _test.rego files define no test_ rule")
	}
	if len(fail.Failed) > 0 {
		return nil, fail
	}
	return out, nil
}

// underRoots tells whether a package ("acme.policies.x") is under one of the manifest's roots ("acme/policies");
// a manifest without roots claims the whole data tree, as in OPA.
func (b *Bundle) underRoots(pkg string) bool {
	if len(b.Manifest.Roots) == 0 {
		return true
	}
	p := strings.ReplaceAll(pkg, ".", "/")
	for _, r := range b.Manifest.Roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func sources(files []File, prefix string) []policies.Source {
	out := make([]policies.Source, 0, len(files))
	for _, f := range files {
		name := f.Path
		if prefix != "" {
			name = prefix + "/" + f.Path
		}
		out = append(out, policies.Source{Name: name, Text: string(f.Data)})
	}
	return out
}

func emptyObject(data []byte) bool {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	return dec.Decode(&v) == nil && len(v) == 0
}
