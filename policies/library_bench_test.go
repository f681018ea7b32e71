package policies_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/continuums/attest/policies"
)

// benchInput is a 3-container Deployment in a production namespace with every fact ATTEST establishes: the
// shape of a typical admission, on which every library policy has work to do.
func benchInput() policies.Input {
	return deployment(func(c *in) {
		c.annotations["attest.continuu.ms/audit-logging"] = "enabled"
		c.annotations["gdpr.attest.continuu.ms/personal-data"] = "true"
		c.annotations["attest.continuu.ms/receipt"] = receipt(map[string]any{
			"gcr.io/company/app:1.0":     receiptEntry(digestA, "release-key"),
			"gcr.io/company/proxy:2.1":   receiptEntry(digestA, "release-key"),
			"gcr.io/company/migrate:1.0": receiptEntry(digestA, "release-key"),
		})
		c.containers = []policies.Container{
			ctr("spec.template.spec.initContainers[0]", "migrate", "gcr.io/company/migrate:1.0", limits("500m", "256Mi")),
			ctr("spec.template.spec.containers[0]", "app", "gcr.io/company/app:1.0", limits("1", "1Gi")),
			ctr("spec.template.spec.containers[1]", "proxy", "gcr.io/company/proxy:2.1", map[string]any{
				"securityContext": map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true},
				"resources":       map[string]any{"requests": map[string]any{"cpu": "100m"}},
			}),
		}
		c.images = map[string]map[string]any{
			"gcr.io/company/migrate:1.0": verified("gcr.io/company/migrate", "1.0"),
			"gcr.io/company/app:1.0":     verified("gcr.io/company/app", "1.0"),
			"gcr.io/company/proxy:2.1":   verified("gcr.io/company/proxy", "2.1"),
		}
	})
}

// BenchmarkLibrary evaluates every library policy (change-window included, though it ships off) on benchInput:
// "eval" with the document converted once, as one admission does for all policies; "document+eval" with the
// conversion counted (both answered from the memo after the first run); then each policy alone, to find the
// slowest, from the memo, through its plan and with topdown.
func BenchmarkLibrary(b *testing.B) {
	ctx := context.Background()
	e := library(b)
	e.Plan()
	type run struct {
		p *policies.Policy
		s policies.Settings
	}
	var runs []run
	for _, p := range e.Policies() {
		params := map[string]any(nil)
		if p.Name == "trusted-registries" {
			params = map[string]any{"trusted_registries": []any{"gcr.io/company"}}
		}
		s, err := p.NewSettings(policies.ModeEnforce, params)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, run{p, s})
	}
	in := benchInput()
	doc, err := policies.NewDocument(in)
	if err != nil {
		b.Fatal(err)
	}
	evalAll := func(b *testing.B, doc *policies.Document) int {
		n := 0
		for _, r := range runs {
			f, err := r.p.Eval(ctx, doc, r.s)
			if err != nil {
				b.Fatal(err)
			}
			n += len(f)
		}
		return n
	}
	b.Run("eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			evalAll(b, doc)
		}
	})
	b.Run("document+eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := policies.NewDocument(in)
			if err != nil {
				b.Fatal(err)
			}
			evalAll(b, d)
		}
	})
	// Each policy alone: answered from its memo (the same pod template again), then run in full through its plan
	// and with topdown.
	for _, mode := range []struct {
		name          string
		memo, planned bool
	}{{"memo", true, true}, {"plan", false, true}, {"topdown", false, false}} {
		e.SetMemo(mode.memo)
		e.SetPlanned(mode.planned)
		for _, r := range runs {
			b.Run(fmt.Sprintf("%s/policy=%s", mode.name, r.p.Name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := r.p.Eval(ctx, doc, r.s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
