//go:build !lean

package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

// fakeSource is a cluster of one namespace for the audit's listing.
type fakeSource struct{ objects map[string][]map[string]any }

func (f fakeSource) Namespaces(context.Context) ([]audit.Namespace, error) {
	return []audit.Namespace{{Name: "shop"}}, nil
}

func (f fakeSource) List(_ context.Context, k audit.Kind, _ string, fn func(map[string]any) error) error {
	for _, o := range f.objects[k.Resource] {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// TestCheckObserver: each object the audit evaluates becomes the check's results, named as from the cluster (no
// line), counted as a check of files counts them.
func TestCheckObserver(t *testing.T) {
	engine, err := compileLibrary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("policies:\n  - {name: require-attestation, mode: \"off\"}\n  - {name: require-receipt, mode: \"off\"}\n  - {name: resource-limits, mode: \"off\"}\n  - name: trusted-registries\n    parameters: {trusted_registries: [gcr.io/company]}\n"), engine)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	deploy := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": "shop", "uid": "u1"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "app", "image": "gcr.io/company/web:1", "securityContext": map[string]any{"privileged": true}}}}}}}
	var out bytes.Buffer
	run := checkRun{report: checkReport{Results: []checkResult{}}, engine: engine, cfg: cfg, opts: checkOptions{format: "text"}, mode: policies.Mode("")}
	sink, err := newCheckSink(&run, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	a, err := audit.New(audit.Options{Source: fakeSource{map[string][]map[string]any{"deployments": {deploy}}}, Evaluator: eval,
		Config: cfgFunc(cfg), Engine: engine, Sink: discardReports{}, Observer: &checkObserver{sink: sink}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "cluster: DENY Deployment shop/web: [no-privileged] spec.template.spec.containers[0] (app): privileged containers are not allowed; remove securityContext.privileged or add a PolicyException\n"
	if out.String() != want || run.report.Objects != 1 || run.report.Violations != 1 {
		t.Errorf("output %q (objects %d, violations %d), want %q", out.String(), run.report.Objects, run.report.Violations, want)
	}
	if err := checkExit(&run, nil); err == nil {
		t.Error("a denied violation must exit 1")
	}
}
