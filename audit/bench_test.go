package audit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/audit"
	"github.com/continuums/attest/config"
)

// BenchmarkAudit1000 audits 1,000 Deployments in 10 namespaces with the whole library (require-attestation off),
// from memory into a sink that keeps nothing: the audit's own cost, without the API server.
func BenchmarkAudit1000(b *testing.B) {
	e := Engine(b)
	cfg, err := config.Parse([]byte("policies:\n  - {name: require-attestation, mode: \"off\"}\n  - name: trusted-registries\n    parameters:\n      trusted_registries: [gcr.io/company]\n"), e)
	if err != nil {
		b.Fatal(err)
	}
	current := func() *config.Config { return cfg }
	ev, err := admission.New(admission.Options{Engine: e, Config: current})
	if err != nil {
		b.Fatal(err)
	}
	src := &memSource{objects: map[string][]map[string]any{}}
	for i := range 10 {
		src.namespaces = append(src.namespaces, audit.Namespace{Name: fmt.Sprintf("ns-%d", i)})
	}
	for i := range 1000 {
		image := "gcr.io/company/app:1.0"
		if i%2 == 1 {
			image = "gcr.io/company/app:latest"
		}
		var opts []ContainerOpt
		if i%10 == 0 {
			opts = append(opts, Privileged())
		}
		src.add("deployments", withUID(Object(Deployment, fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("app-%05d", i), PodSpec{Containers: []Container{NewContainer("app", image, opts...)}}), fmt.Sprint(i)))
	}
	a, err := audit.New(audit.Options{Source: src, Evaluator: ev, Config: current, Engine: e, Sink: nopSink{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := a.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

type nopSink struct{}

func (nopSink) Write(_ context.Context, r *audit.Report) error { _ = r.Object("bench"); return nil }
func (nopSink) Finish(context.Context, string, int) error      { return nil }
