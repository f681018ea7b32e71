//go:build !lean

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
)

type imageVerifyOptions struct {
	config  string
	format  string
	output  string
	timeout time.Duration
}

// Results of `attest image verify` for one image.
const (
	imagePassed  = "passed"  // satisfies the trust policy that covers it
	imageFailed  = "failed"  // does not, could not be verified, or is covered by no policy and noMatch is deny
	imageAudit   = "audit"   // covered by no policy; trust.noMatch audit reports it
	imageAllowed = "allowed" // covered by no policy; trust.noMatch allow admits it
)

// imageReport is `attest image verify --format json`.
type imageReport struct {
	Images []imageResult `json:"images"`
	Passed int           `json:"passed"`
	Failed int           `json:"failed"`
}

type imageResult struct {
	Image  string `json:"image"`
	Result string `json:"result"`
	// Facts is input.images[image], exactly what policies see.
	Facts map[string]any `json:"facts"`
	facts attestation.Facts
}

func newImageCommand() *cobra.Command {
	image := &cobra.Command{Use: "image", Short: fullShort["image"]}
	o := imageVerifyOptions{}
	verify := &cobra.Command{
		Use:   "verify REF...",
		Short: "Print what ATTEST establishes about images: digest, signature, attestations, trust policy",
		Long: "Resolves each image's tag to a digest and verifies its cosign signatures and in-toto attestations against\n" +
			"the trust section of --config, as the webhook does, and prints the facts policies see as input.images.\n" +
			"Registry credentials come from the Docker config (~/.docker/config.json and credential helpers), else\n" +
			"anonymous. Exits 0 when every image passes (or is covered by no trust policy and trust.noMatch is audit\n" +
			"or allow), 1 when an image fails its trust policy or could not be verified, 2 on usage or config errors.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImageVerify(cmd, o, args) },
	}
	f := verify.Flags()
	f.StringVar(&o.config, "config", "", "policies.yaml whose trust section applies (default: none, so no trust policy covers any image)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time to verify one image")
	image.AddCommand(verify)
	return image
}

func runImageVerify(cmd *cobra.Command, o imageVerifyOptions, images []string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return usageError(fmt.Errorf("--timeout must be positive"))
	}
	ctx := cmd.Context()
	_, cfg, err := engineAndConfig(ctx, o.config)
	if err != nil {
		return err
	}
	v := attestation.NewVerifier(cfg.Trust, attestation.VerifierOptions{Timeout: o.timeout})
	facts := v.VerifyAll(ctx, images, authn.DefaultKeychain, 0)
	report := imageReport{Images: make([]imageResult, 0, len(images))}
	seen := map[string]bool{}
	for _, img := range images {
		if seen[img] {
			continue
		}
		seen[img] = true
		f := facts[img]
		r := imageResult{Image: img, Result: imageVerdict(f), Facts: admission.ImageInput(img, cfg, &f), facts: f}
		switch r.Result {
		case imageFailed:
			report.Failed++
		case imagePassed:
			report.Passed++
		}
		report.Images = append(report.Images, r)
	}
	err = emit(cmd, o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, report)
		}
		return writeImagesText(w, report)
	})
	if err != nil {
		return err
	}
	if report.Failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// imageVerdict is what require-attestation, enforced, would make of the facts.
func imageVerdict(f attestation.Facts) string {
	switch {
	case f.Passed():
		return imagePassed
	case f.Trust.Policy == "" && f.Trust.Error == "" && f.Trust.NoMatch == attestation.NoMatchAllow:
		return imageAllowed
	case f.Trust.Policy == "" && f.Trust.NoMatch == attestation.NoMatchAudit && strings.HasPrefix(f.Trust.Error, "no trust policy covers "):
		return imageAudit
	}
	return imageFailed
}

func writeImagesText(w io.Writer, r imageReport) error {
	for _, img := range r.Images {
		f := img.facts
		fmt.Fprintln(w, img.Image)
		line := func(label, text string) { fmt.Fprintf(w, "  %-13s %s\n", label+":", text) }
		if f.Digest != "" {
			line("digest", f.Digest)
		}
		if f.Trust.Policy == "" {
			line("trust policy", "none (trust.noMatch: "+f.Trust.NoMatch+")")
		} else {
			line("trust policy", f.Trust.Policy)
		}
		if f.Trust.Policy != "" && f.Trust.Checked {
			if f.Signature.Verified {
				line("signature", "verified, signer "+f.Signature.Signer+", authority "+f.Signature.Authority)
			} else {
				line("signature", "not verified: "+f.Signature.Error)
			}
			for _, a := range f.Attestations {
				if a.Verified {
					line("attestation", a.PredicateType+" verified, signer "+a.Signer)
				} else {
					line("attestation", a.PredicateType+" not verified: "+a.Error)
				}
			}
		}
		switch img.Result {
		case imagePassed:
			line("result", "PASS")
		case imageAllowed:
			line("result", "ALLOWED (no trust policy covers it, and trust.noMatch is allow)")
		case imageAudit:
			line("result", "AUDIT: "+f.Trust.Error+" (trust.noMatch is audit)")
		default:
			line("result", "FAIL: "+f.Trust.Error)
		}
	}
	_, err := fmt.Fprintf(w, "%d images: %d passed, %d failed\n", len(r.Images), r.Passed, r.Failed)
	return err
}
