package admission_test

import (
	"context"
	"testing"
	"time"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/exemptions"
)

// The memo of policy results never changes a verdict: the same pod template is decided again, right after a
// decision that filled the memo, for another requester, exemption, namespace label, request time and image
// fact, and each verdict is the one a pipeline without earlier requests gives.
func TestMemoNeverChangesAVerdict(t *testing.T) {
	const cfgYAML = `
exemptions:
  annotationGroups: [break-glass]
productionNamespaces:
  selector: {matchLabels: {environment: production}}
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: ["gcr.io/company"]
  - name: require-attestation
    enabled: false
  - name: change-window
    enforcement: strict
    parameters:
      windows: [{days: [Mon, Tue, Wed, Thu, Fri], start: "09:00", end: "17:00", timezone: UTC}]
`
	build := func() *admission.Evaluator { return Pipeline(t, cfgYAML, "") }
	exempt := map[string]string{
		exemptions.AnnotationExempt: "no-privileged", exemptions.AnnotationReason: "incident 42",
		exemptions.AnnotationApprovedBy: "bob@company.com", exemptions.AnnotationExpires: "2026-11-27T12:00:00Z",
	}
	privilegedPod := func(image string) map[string]any {
		return annotate(Object(Pod, "shop", "web", PodSpec{Containers: []Container{NewContainer("app", image, Privileged())}}), exempt)
	}
	at := func(in admission.Input, hour int) admission.Input {
		in.Request.TimestampNS = time.Date(2026, 11, 25, hour, 0, 0, 0, time.UTC).UnixNano() // a Wednesday
		return in
	}
	production := map[string]string{"environment": "production"}
	base := func() admission.Input {
		in := at(asUser(Create(privilegedPod("gcr.io/company/app:1")), "alice", "break-glass"), 12)
		in.NamespaceLabels = production
		return in
	}
	cases := []struct {
		name   string
		input  func() admission.Input
		denied bool
	}{
		{"the same request again", base, false},
		{"a requester the exemption does not cover", func() admission.Input {
			return asUser(base(), "mallory", "developers")
		}, true},
		{"outside the change window", func() admission.Input { return at(base(), 20) }, true},
		{"a namespace that is not production (no window applies)", func() admission.Input {
			in := at(base(), 20)
			in.NamespaceLabels = map[string]string{"environment": "staging"}
			return in
		}, false},
		{"an image from an untrusted registry", func() admission.Input {
			in := base()
			in.Object = privilegedPod("quay.io/evil/app:1")
			return in
		}, true},
	}
	shared := build()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if d := shared.Evaluate(ctx, base()); !d.Allowed {
				t.Fatalf("the base request was denied: %s", d.Message)
			}
			got := shared.Evaluate(ctx, tc.input())
			want := build().Evaluate(ctx, tc.input())
			if got.Allowed != want.Allowed || got.Message != want.Message || len(got.Warnings) != len(want.Warnings) {
				t.Fatalf("after the base request: allowed=%t %q; fresh pipeline: allowed=%t %q", got.Allowed, got.Message, want.Allowed, want.Message)
			}
			for i := range got.Warnings {
				if got.Warnings[i] != want.Warnings[i] {
					t.Errorf("warning %d: %q, fresh pipeline %q", i, got.Warnings[i], want.Warnings[i])
				}
			}
			if got.Allowed == tc.denied {
				t.Errorf("allowed=%t, want denied=%t: %s", got.Allowed, tc.denied, got.Message)
			}
		})
	}
}
