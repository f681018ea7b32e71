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
	// Policies are the bundle's policies of every language (Rego, compiled with but not including the library;
	// Cedar policy sets; Gatekeeper constraints), Rego first.
	Policies []*policies.Policy
	// Sources are the bundle's Rego policy sources, named as in Policies' File.
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

// ErrFullBuild is why the lean build cannot check a bundle: it leaves Gatekeeper's evaluation library out, and
// attest-full checks the bundle's Gatekeeper files.
var ErrFullBuild = errors.New("the lean build leaves Gatekeeper's library out: attest-full checks a bundle's Gatekeeper files")

// Check checks every policy of the bundle as the webhook would load it, and refuses the whole bundle on any
// failure: a bundle loads entirely or not at all. Rego policies compile together with lib (the embedded library,
// so that a name or package clash with a library policy is refused, never shadowed), lie under the manifest's
// roots, and pass the bundle's Rego tests under the admission capabilities. Each .cedar file parses and validates
// against ATTEST's Cedar schema as one policy set named after the file. Gatekeeper YAML compiles as `attest policy
// check` compiles it (templates, then ExpansionTemplates, then constraints against their templates' schemas), each
// constraint the policy "<Kind>/<name>". No two policies share a name, nor one with the library. prefix names the
// bundle in the policies' File ("<prefix>/<path>").
func (b *Bundle) Check(ctx context.Context, lib []policies.Source, prefix string) (*Checked, error) {
	for _, f := range b.ByKind(KindData) {
		if !emptyObject(f.Data) {
			return nil, fmt.Errorf("%s: policies read their parameters from input.params (Policy, PolicyConfig, the config file); a bundle's data.json must be {}", f.Path)
		}
	}
	srcs := sources(b.ByKind(KindRego), prefix)
	tests := sources(b.ByKind(KindRegoTest), prefix)
	cedarFiles, gkFiles := b.ByKind(KindCedar), b.ByKind(KindGatekeeper)
	if len(srcs)+len(cedarFiles)+len(gkFiles) == 0 {
		return nil, errors.New("the bundle holds no policy (Rego .rego, Cedar .cedar or Gatekeeper .yaml)")
	}
	// The library compiles even without Rego in the bundle: a Cedar set must not take a library policy's name.
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
	if len(srcs) > 0 && len(tests) == 0 {
		return nil, errors.New("the bundle holds no Rego test (_test.rego): a bundle ships tested policies")
	}
	if len(tests) > 0 {
		if out.Tests, err = runTests(ctx, append(append([]policies.Source(nil), lib...), srcs...), tests); err != nil {
			return nil, err
		}
	}
	others, err := cedarPolicies(cedarFiles, prefix)
	if err != nil {
		return nil, err
	}
	if len(gkFiles) > 0 {
		gk, err := gatekeeperPolicies(ctx, gkFiles, prefix)
		if err != nil {
			return nil, err
		}
		others = append(others, gk...)
	}
	if _, err := e.With(others...); err != nil {
		return nil, err
	}
	out.Policies = append(out.Policies, others...)
	return out, nil
}

// runTests runs the bundle's Rego tests; it fails unless there is at least one and every one passes.
func runTests(ctx context.Context, srcs, tests []policies.Source) ([]policies.TestResult, error) {
	results, err := policies.RunTests(ctx, srcs, tests)
	if err != nil {
		return nil, fmt.Errorf("tests: %w", err)
	}
	fail := &TestFailure{Total: len(results)}
	for _, r := range results {
		if !r.Pass {
			fail.Failed = append(fail.Failed, r)
		}
	}
	if fail.Total == 0 {
		return nil, errors.New("the bundle's _test.rego files define no test_ rule")
	}
	if len(fail.Failed) > 0 {
		return nil, fail
	}
	return results, nil
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
		out = append(out, policies.Source{Name: named(prefix, f.Path), Text: string(f.Data)})
	}
	return out
}

func emptyObject(data []byte) bool {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	return dec.Decode(&v) == nil && len(v) == 0
}
