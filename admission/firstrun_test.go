package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/continuums/attest/admission"
	. "github.com/continuums/attest/admission/admissiontest"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
)

// TestFirstRun: with no trust section, require-attestation says once per object that no image is verified: as a
// warning when its mode is not set (a first run), as a denial when the configuration sets enforce (or strict, or an
// enforceAfter that has passed). A trust section, even one that only says noMatch: deny, keeps every uncovered image
// denied one by one. The real verifier answers; no registry is contacted.
func TestFirstRun(t *testing.T) {
	const once = `[require-attestation] spec: no image is verified: policies.yaml has no trust section; add trust.policies to policies.yaml naming your images and the keys or identities that sign them (README: Image trust)`
	uncovered := func(image, path, container string) string {
		return `[require-attestation] ` + path + ` (` + container + `): no trust policy covers image "` + image + `", and images no trust policy covers are denied; use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it`
	}
	cases := []struct {
		name     string
		yaml     string
		allowed  bool
		message  string
		warnings []string
	}{
		{name: "no file at all", allowed: true, warnings: []string{"audit: " + once}},
		{name: "the policy listed without a mode", yaml: "policies:\n  - {name: require-attestation, enabled: true}\n", allowed: true, warnings: []string{"audit: " + once}},
		{name: "mode enforce", yaml: "policies:\n  - {name: require-attestation, mode: enforce}\n", message: once},
		{name: "enforcement strict", yaml: "policies:\n  - {name: require-attestation, enforcement: strict}\n", message: once},
		{name: "enforceAfter passed", yaml: "policies:\n  - {name: require-attestation, enforceAfter: \"2020-01-01T00:00:00Z\"}\n", message: once},
		{name: "mode audit", yaml: "policies:\n  - {name: require-attestation, mode: audit}\n", allowed: true, warnings: []string{"audit: " + once}},
		{name: "mode off", yaml: "policies:\n  - {name: require-attestation, mode: \"off\"}\n", allowed: true},
		{name: "a trust section with only noMatch deny", yaml: "trust: {noMatch: deny}\n",
			message: uncovered("nginx:1.27", "spec.containers[0]", "c0") + "\n" + uncovered("busybox:1.36", "spec.containers[1]", "c1")},
		{name: "a trust section with noMatch audit", yaml: "trust: {noMatch: audit}\n", allowed: true, warnings: []string{
			`warn: [require-attestation] spec.containers[0] (c0): no trust policy covers image "nginx:1.27", which is admitted because images no trust policy covers are only reported; use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it`,
			`warn: [require-attestation] spec.containers[1] (c1): no trust policy covers image "busybox:1.36", which is admitted because images no trust policy covers are only reported; use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			engine := Engine(t, "require-attestation")
			cfg, err := config.ParseIn([]byte(c.yaml), engine, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ev, err := admission.New(admission.Options{
				Engine: engine,
				Config: func() *config.Config { return cfg },
				Verifier: func(c *config.Config) admission.ImageVerifier {
					return attestation.NewVerifier(c.Trust, attestation.VerifierOptions{})
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			dec := ev.Evaluate(context.Background(), Create(pod("nginx:1.27", "busybox:1.36")))
			if dec.Allowed != c.allowed || dec.Message != c.message {
				t.Fatalf("allowed=%v message:\n%s\nwant allowed=%v message:\n%s", dec.Allowed, dec.Message, c.allowed, c.message)
			}
			// The API server's 256-character limit cuts long warnings with an ellipsis; the first-run one fits whole.
			ok := len(dec.Warnings) == len(c.warnings)
			for i := 0; ok && i < len(c.warnings); i++ {
				got := dec.Warnings[i]
				ok = got == c.warnings[i] || (strings.HasSuffix(got, "…") && strings.HasPrefix(c.warnings[i], strings.TrimSuffix(got, "…")))
			}
			if !ok {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(dec.Warnings, "\n"), strings.Join(c.warnings, "\n"))
			}
		})
	}
}
