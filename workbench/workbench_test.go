package workbench_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workbench"
)

// TestEvaluate: the recorded inputs replayed through the pipeline with min-replicas as written, as edited, and
// as broken, against the verdicts the webhook recorded.
func TestEvaluate(t *testing.T) {
	dir := t.TempDir()
	srcs := sources(t, dir)
	log := recordedLog(t, srcs,
		deployment("one", 1, "gcr.io/company/web:1", false),
		deployment("two", 2, "gcr.io/company/web:1", false),
		deployment("priv", 3, "gcr.io/company/web:1", true),
	)
	wb := newWorkbench(t, dir, log)
	recs := wb.Records()
	if len(recs) != 3 || recs[0].Name != "priv" || recs[1].Name != "two" || recs[2].Name != "one" {
		t.Fatalf("records not newest first: %+v", recs)
	}
	index := func(name string) *int {
		for i, r := range recs {
			if r.Name == name {
				return &i
			}
		}
		t.Fatalf("no record %s", name)
		return nil
	}
	const tooFew = "[min-replicas] spec.replicas: 1 replica(s) is too few; set spec.replicas to 2 or more"
	const three = "[min-replicas] spec.replicas: 3 replica(s) is too few; set spec.replicas to 2 or more"
	const privileged = "[no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException"
	atLeastFour := strings.Replace(minReplicas, "r < 2", "r < 4", 1)
	cases := []struct {
		name          string
		record        string
		source        string
		explain       string
		decision      string
		findings      []string
		diffSame      bool
		added         []string
		removed       []string
		compileErrors []workbench.CompileError
		traceHas      string
	}{
		{name: "as recorded: denied, unchanged", record: "one", decision: "denied", findings: []string{tooFew}, diffSame: true},
		{name: "as recorded: allowed, unchanged, with a trace", record: "two", explain: "full", decision: "allowed", findings: []string{}, diffSame: true, traceHas: "Enter data.company.min_replicas.violation"},
		{name: "edited: the threshold raised denies what was allowed", record: "priv", source: atLeastFour, decision: "denied", findings: []string{three}, added: []string{three}},
		{name: "edited: the rule removed allows what was denied", record: "one", source: strings.Replace(minReplicas, "r < 2", "r < 0", 1), decision: "allowed", findings: []string{}, removed: []string{tooFew}},
		{name: "a parse error at its line", record: "one", source: strings.Replace(minReplicas, "r < 2\n", "r < < 2\n", 1),
			compileErrors: []workbench.CompileError{{File: "policies/min-replicas.rego", Line: 16, Column: 6, Message: "rego_parse_error: unexpected lt token"}}},
		{name: "an impure built-in refused as the webhook refuses it", record: "one", source: strings.Replace(minReplicas, "r < 2\n", "r < 2\n\ttime.now_ns() > 0\n", 1),
			compileErrors: []workbench.CompileError{{File: "policies/min-replicas.rego", Line: 17, Column: 2, Message: "rego_compile_error: time.now_ns is not allowed in ATTEST policies: it reads the clock; use input.request.timestamp_ns; policies must be pure functions of their input"}}},
		{name: "an undefined reference at its line", record: "one", source: strings.Replace(minReplicas, "r < 2\n", "r < input.nope.limit(2)\n", 1),
			compileErrors: []workbench.CompileError{{File: "policies/min-replicas.rego", Line: 16, Column: 6, Message: "rego_type_error: undefined function input.nope.limit"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := index(c.record)
			res, err := wb.Evaluate(context.Background(), workbench.EvalRequest{Input: recs[*i].Input, Policy: "min-replicas", Source: c.source, Explain: c.explain, Record: i})
			if err != nil {
				t.Fatal(err)
			}
			if c.compileErrors != nil {
				if len(res.CompileErrors) != len(c.compileErrors) || res.CompileErrors[0] != c.compileErrors[0] {
					t.Fatalf("compile errors %+v, want %+v", res.CompileErrors, c.compileErrors)
				}
				return
			}
			if len(res.CompileErrors) > 0 || res.Error != "" {
				t.Fatalf("errors: %+v %s", res.CompileErrors, res.Error)
			}
			if res.Decision != c.decision || strings.Join(res.Findings, "\n") != strings.Join(c.findings, "\n") {
				t.Fatalf("decision %s findings %q, want %s %q", res.Decision, res.Findings, c.decision, c.findings)
			}
			d := res.Diff
			if d == nil || d.Same != c.diffSame || strings.Join(d.Added, "\n") != strings.Join(c.added, "\n") || strings.Join(d.Removed, "\n") != strings.Join(c.removed, "\n") {
				t.Fatalf("diff %+v, want same=%v added %q removed %q", d, c.diffSame, c.added, c.removed)
			}
			if c.record == "priv" && !strings.Contains(res.Message, privileged) {
				t.Fatalf("the other policies' findings are missing: %s", res.Message)
			}
			if c.traceHas != "" && !strings.Contains(strings.Join(res.Trace, "\n"), c.traceHas) {
				t.Fatalf("trace lacks %q:\n%s", c.traceHas, strings.Join(res.Trace, "\n"))
			}
			if c.traceHas == "" && len(res.Trace) > 0 {
				t.Fatalf("a trace without explain: %d lines", len(res.Trace))
			}
		})
	}
	if _, err := wb.Evaluate(context.Background(), workbench.EvalRequest{Input: recs[0].Input, Policy: "min-replicas", Explain: "everything"}); err == nil || !strings.Contains(err.Error(), "explain must be full, fails or debug") {
		t.Fatalf("bad explain: %v", err)
	}
	if _, err := wb.Evaluate(context.Background(), workbench.EvalRequest{Input: recs[0].Input, Policy: "no-such-policy"}); err == nil || !strings.Contains(err.Error(), `no policy named "no-such-policy"`) {
		t.Fatalf("unknown policy: %v", err)
	}
}

// TestSave: "save as test" writes a snapshot test that `attest policy test` (policies.RunTests) passes with the
// policy as saved, and fails once the policy changes its verdict; a file is never overwritten.
func TestSave(t *testing.T) {
	dir := t.TempDir()
	srcs := sources(t, dir)
	log := recordedLog(t, srcs, deployment("one", 1, "gcr.io/company/web:1", false), deployment("two", 2, "gcr.io/company/web:1", false))
	wb := newWorkbench(t, dir, log)
	for _, r := range wb.Records() {
		res, errs, err := wb.Save(context.Background(), workbench.SaveRequest{EvalRequest: workbench.EvalRequest{Input: r.Input, Policy: "min-replicas"}, Name: "Deploy " + r.Name})
		if err != nil || len(errs) > 0 {
			t.Fatal(err, errs)
		}
		if want := filepath.Join(dir, "min-replicas_deploy_"+r.Name+"_test.rego"); res.File != want || res.Test != "test_deploy_"+r.Name {
			t.Fatalf("saved %+v, want %s", res, want)
		}
	}
	tests := readTests(t, dir)
	if len(tests) != 2 || !strings.Contains(tests[1].Text, `"message": "1 replica(s) is too few"`) && !strings.Contains(tests[0].Text, `"message": "1 replica(s) is too few"`) {
		t.Fatalf("snapshot tests:\n%v", tests)
	}
	own := []policies.Source{{Name: "policies/min-replicas.rego", Text: minReplicas}}
	if failed := runTests(t, own, tests); failed != 0 {
		t.Fatalf("%d snapshot tests fail on the policy they were taken from", failed)
	}
	changed := []policies.Source{{Name: own[0].Name, Text: strings.Replace(minReplicas, "r < 2", "r < 3", 1)}}
	if failed := runTests(t, changed, tests); failed != 1 {
		t.Fatalf("%d snapshot tests fail after the threshold changed, want 1 (the two-replica case)", failed)
	}
	_, _, err := wb.Save(context.Background(), workbench.SaveRequest{EvalRequest: workbench.EvalRequest{Input: wb.Records()[0].Input, Policy: "min-replicas"}, Name: "deploy_" + wb.Records()[0].Name})
	if !errors.Is(err, workbench.ErrExists) {
		t.Fatalf("overwrote a test file: %v", err)
	}
}

func readTests(t *testing.T, dir string) []policies.Source {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.rego"))
	if err != nil {
		t.Fatal(err)
	}
	var out []policies.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, policies.Source{Name: f, Text: string(b)})
	}
	return out
}

func runTests(t *testing.T, pols, tests []policies.Source) (failed int) {
	t.Helper()
	results, err := policies.RunTests(context.Background(), pols, tests)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(tests) {
		t.Fatalf("%d results for %d test files", len(results), len(tests))
	}
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	return failed
}
