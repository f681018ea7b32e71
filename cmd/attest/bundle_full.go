//go:build !lean

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/bundles"
)

// bundleRegistryCommands are `attest policy bundle push` and `pull`. Registry credentials come from the Docker
// config (~/.docker/config.json and credential helpers), as for `attest image verify`.
func bundleRegistryCommands() []*cobra.Command {
	push := &cobra.Command{
		Use:   "push DIR|FILE REF",
		Short: fullShort["push"],
		Long: "Checks the bundle as `bundle build` does (a directory is archived first; a file is pushed as its bytes)\n" +
			"and pushes it to REF as an OCI artifact with OPA's bundle media types (one\n" +
			"application/vnd.oci.image.layer.v1.tar+gzip layer). Prints REF@DIGEST, the reference to sign with\n" +
			"`cosign sign`. Exits 0 when pushed, 1 when the bundle fails its checks or the push fails, 2 on usage errors.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return runBundlePush(cmd, args[0], args[1]) },
	}
	var out, cfgPath, trustPolicy string
	pull := &cobra.Command{
		Use:   "pull REF -o DIR",
		Short: fullShort["pull"],
		Long: "Pulls the bundle artifact at REF and writes its files under DIR (which must be empty or absent). With\n" +
			"--config, the artifact's signature is verified against the trust section first and the verified digest is\n" +
			"pulled; without it nothing is verified and the output says so.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBundlePull(cmd, args[0], out, cfgPath, trustPolicy)
		},
	}
	pull.Flags().StringVarP(&out, "output", "o", "", "directory to write the bundle's files to (required)")
	pull.Flags().StringVar(&cfgPath, "config", "", "policies.yaml whose trust section the bundle must satisfy")
	pull.Flags().StringVar(&trustPolicy, "trust-policy", "", "the trust policy that must cover REF (default: whichever covers it)")
	return []*cobra.Command{push, pull}
}

func runBundlePush(cmd *cobra.Command, src, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return usageError(fmt.Errorf("REF %q: %w", ref, err))
	}
	b, archive, err := openBundle(src)
	if err != nil {
		return usageError(err)
	}
	c, err := checkBundle(cmd.Context(), b)
	if err != nil {
		return failure(fmt.Errorf("%s: %w", src, err))
	}
	d, err := bundles.Push(cmd.Context(), archive, r, authn.DefaultKeychain)
	if err != nil {
		return failure(err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "pushed %s\n", d)
	fmt.Fprintf(w, "bundle layer: %s\n", bundles.Digest(archive))
	writeBundleSummary(w, b, c)
	fmt.Fprintf(w, "sign it: cosign sign --key <key> %s\n", d)
	return nil
}

// openBundle reads a bundle directory (and archives it) or a bundle file (and keeps its bytes).
func openBundle(src string) (*bundles.Bundle, []byte, error) {
	info, err := os.Stat(src)
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle: %w", err)
	}
	if info.IsDir() {
		b, err := bundles.ReadDir(src, bundles.DefaultLimits)
		if err != nil {
			return nil, nil, err
		}
		archive, err := b.Archive()
		return b, archive, err
	}
	if info.Size() > bundles.DefaultLimits.MaxArchiveBytes {
		return nil, nil, fmt.Errorf("%s: %d bytes, over the %d-byte bundle limit", src, info.Size(), bundles.DefaultLimits.MaxArchiveBytes)
	}
	archive, err := os.ReadFile(src)
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle: %w", err)
	}
	b, err := bundles.Read(bytes.NewReader(archive), bundles.DefaultLimits)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	return b, archive, nil
}

func runBundlePull(cmd *cobra.Command, ref, out, cfgPath, trustPolicy string) error {
	if out == "" {
		return usageError(errors.New("-o DIR is required"))
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return usageError(fmt.Errorf("REF %q: %w", ref, err))
	}
	ctx := cmd.Context()
	w := cmd.OutOrStdout()
	var b *bundles.Bundle
	var d name.Digest
	if cfgPath != "" {
		v, err := fetchVerified(cmd, cfgPath, ref, trustPolicy)
		if err != nil {
			return err
		}
		b, d = v.Bundle, v.Ref
		fmt.Fprintf(w, "verified %s: signed by %s (authority %s, trust policy %s)\n", d, v.Signer, v.Authority, v.TrustPolicy)
	} else {
		if d, err = bundles.Resolve(ctx, r, authn.DefaultKeychain); err != nil {
			return failure(err)
		}
		if b, _, err = bundles.Pull(ctx, d, authn.DefaultKeychain, bundles.DefaultLimits); err != nil {
			return failure(err)
		}
		fmt.Fprintf(w, "pulled %s: signature not verified (pass --config to verify it)\n", d)
	}
	if err := b.WriteDir(out); err != nil {
		return failure(err)
	}
	fmt.Fprintf(w, "wrote %d files and .manifest to %s\n", len(b.Files), out)
	return nil
}

// fetchVerified verifies ref against the trust section of cfgPath and pulls it by the verified digest.
func fetchVerified(cmd *cobra.Command, cfgPath, ref, trustPolicy string) (*bundles.Verified, error) {
	_, cfg, err := engineAndConfig(cmd.Context(), cfgPath)
	if err != nil {
		return nil, err
	}
	v := attestation.NewVerifier(cfg.Trust, attestation.VerifierOptions{Timeout: 30 * time.Second})
	got, err := bundles.Fetch(cmd.Context(), v, ref, trustPolicy, authn.DefaultKeychain, bundles.DefaultLimits)
	if err != nil {
		return nil, failure(err)
	}
	return got, nil
}

type validateBundleOptions struct {
	config      string
	trustPolicy string
	format      string
}

// validateBundleReport is `attest policy validate-bundle --format json`.
type validateBundleReport struct {
	Bundle      string   `json:"bundle"`
	Digest      string   `json:"digest"`
	Verified    bool     `json:"verified"`
	Signer      string   `json:"signer,omitempty"`
	Authority   string   `json:"authority,omitempty"`
	TrustPolicy string   `json:"trust_policy,omitempty"`
	Revision    string   `json:"revision,omitempty"`
	Policies    []string `json:"policies"`
	Tests       int      `json:"tests_passed"`
}

func newValidateBundleCommand() *cobra.Command {
	o := validateBundleOptions{}
	cmd := &cobra.Command{
		Use:   "validate-bundle REF|FILE",
		Short: fullShort["validate-bundle"],
		Long: "For a registry reference: verifies the artifact's cosign signature against the trust section of --config\n" +
			"(keys and keyless identities, as `attest image verify`; an artifact covered by no trust policy, unsigned,\n" +
			"or signed by another key is refused), pulls it by the verified digest, checks it as `bundle build` does\n" +
			"(Rego compiled with the library and tested, Cedar validated, Gatekeeper templates and constraints\n" +
			"compiled), then prints the digest, the signer and the policies. For a bundle FILE or DIR: the same\n" +
			"checks but the signature (a file carries none; push it and validate the reference).\n" +
			"Exits 0 when the bundle would load, 1 when it would not, 2 on usage errors.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runValidateBundle(cmd, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "policies.yaml whose trust section the bundle must satisfy (required for a REF)")
	f.StringVar(&o.trustPolicy, "trust-policy", "", "the trust policy that must cover REF (default: whichever covers it)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func runValidateBundle(cmd *cobra.Command, o validateBundleOptions, arg string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	report := validateBundleReport{Bundle: arg}
	var b *bundles.Bundle
	if _, statErr := os.Stat(arg); statErr == nil {
		var archive []byte
		var err error
		if b, archive, err = openBundle(arg); err != nil {
			return failure(err)
		}
		report.Digest = bundles.Digest(archive)
	} else {
		if _, err := name.ParseReference(arg); err != nil {
			return usageError(fmt.Errorf("%s is neither a file nor a registry reference: %w", arg, err))
		}
		if o.config == "" {
			return usageError(errors.New("--config is required for a registry reference: its trust section says who must have signed the bundle"))
		}
		v, err := fetchVerified(cmd, o.config, arg, o.trustPolicy)
		if err != nil {
			return err
		}
		b = v.Bundle
		report.Digest, report.Verified, report.Signer, report.Authority, report.TrustPolicy = v.Digest, true, v.Signer, v.Authority, v.TrustPolicy
	}
	c, err := checkBundle(cmd.Context(), b)
	if err != nil {
		return failure(fmt.Errorf("%s: %w", arg, err))
	}
	report.Revision, report.Tests = b.Manifest.Revision, len(c.Tests)
	for _, p := range c.Policies {
		report.Policies = append(report.Policies, p.Name)
	}
	return emit(cmd, "", func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, report)
		}
		fmt.Fprintf(w, "bundle %s\ndigest: %s\n", arg, report.Digest)
		if report.Verified {
			fmt.Fprintf(w, "signer: %s (authority %s, trust policy %s)\n", report.Signer, report.Authority, report.TrustPolicy)
		} else {
			fmt.Fprintln(w, "signer: not verified (a file carries no signature; push it and validate the reference)")
		}
		writeBundleSummary(w, b, c)
		return nil
	})
}

// bundleCheckHere: the full build checks every bundle itself.
func bundleCheckHere(*bundles.Bundle) error { return nil }

// configHere: the full build loads every configuration itself.
func configHere(err error) error { return err }
