//go:build !lean

package tracing

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/config"
)

// BenchmarkPipeline is the whole library's pipeline for new 2-container Deployments, untraced and with every
// admission traced (recorded, encoded, handed to an uploader that drops them): tracing's cost on the request path
// and its exporter's, without the network.
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name   string
		tracer func() *Tracer
	}{
		{"untraced", func() *Tracer { return nil }},
		{"traced", func() *Tracer {
			return newTracer(discard{}, sdktrace.AlwaysSample(), nil, Options{BatchTimeout: time.Millisecond})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := tc.tracer()
			var t admission.Tracer
			if tr != nil {
				t = tr
				defer func() { _ = tr.Shutdown(context.Background()) }()
			}
			e := Engine(b)
			cfg, err := config.Parse([]byte(TrustedConfig), e)
			if err != nil {
				b.Fatal(err)
			}
			ev, err := admission.New(admission.Options{Engine: e, Config: func() *config.Config { return cfg }, Tracer: t})
			if err != nil {
				b.Fatal(err)
			}
			ins := make([]admission.Input, 4096)
			for i := range ins {
				ins[i] = Create(Object(Deployment, "shop", fmt.Sprintf("web-%d", i), PodSpec{Containers: []Container{
					NewContainer("app", fmt.Sprintf("gcr.io/company/app:2.%d", i)), NewContainer("proxy", "nginx:1.27")}}))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ctx, root := admission.StartSpan(context.Background(), t, admission.StageAdmission, "http.route", "/validate")
				ev.Evaluate(ctx, ins[i%len(ins)])
				root.End(nil)
				i++
			}
		})
	}
}
