package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/bundles"
	"github.com/continuums/attest/policies"
)

// newBundleCommand is `attest policy bundle`: build runs in the lean build (no registry code); push and pull run
// in attest-full (bundleRegistryCommands).
func newBundleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bundle", Short: "Build, push and pull signed policy bundles (OPA bundle format, OCI artifacts)"}
	var out string
	build := &cobra.Command{
		Use:   "build DIR -o FILE",
		Short: "Check a policy directory (compile with the library, run its tests) and write it as a bundle",
		Long: "Reads DIR (a .manifest with revision and roots, Rego policies with METADATA, their _test.rego files, an\n" +
			"optional empty data.json, Cedar .cedar policy sets, Gatekeeper ConstraintTemplates, constraints and\n" +
			"ExpansionTemplates in .yaml files; hidden files are skipped, symbolic links refused), compiles the Rego\n" +
			"policies with the embedded library under the webhook's rules and runs the bundle's Rego tests, parses and\n" +
			"validates each .cedar file (one policy set named after the file), compiles the templates and checks each\n" +
			"constraint against its template in the bundle, and only when all pass writes a gzipped tar that is the\n" +
			"same bytes for the same files (so the same digest). Prints the digest and the policies.\n" +
			"Exits 0 when written, 1 when the bundle does not compile or a test fails, 2 on usage errors.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBundleBuild(cmd, args[0], out) },
	}
	build.Flags().StringVarP(&out, "output", "o", "", "the bundle file to write (required)")
	cmd.AddCommand(build)
	cmd.AddCommand(bundleRegistryCommands()...)
	return cmd
}

func runBundleBuild(cmd *cobra.Command, dir, out string) error {
	if out == "" {
		return usageError(errors.New("-o FILE is required"))
	}
	b, err := bundles.ReadDir(dir, bundles.DefaultLimits)
	if err != nil {
		return usageError(err)
	}
	if err := bundleCheckHere(b); err != nil {
		return err
	}
	c, err := checkBundle(cmd.Context(), b)
	if err != nil {
		return failure(fmt.Errorf("%s: %w", dir, err))
	}
	archive, err := b.Archive()
	if err != nil {
		return failure(err)
	}
	if err := os.WriteFile(out, archive, 0o644); err != nil {
		return failure(fmt.Errorf("write %s: %w", out, err))
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "wrote %s: %s\n", out, bundles.Digest(archive))
	writeBundleSummary(w, b, c)
	return nil
}

// checkBundle checks a bundle against the embedded library, as the webhook would load it.
func checkBundle(ctx context.Context, b *bundles.Bundle) (*bundles.Checked, error) {
	lib, _, err := policies.Library()
	if err != nil {
		return nil, fmt.Errorf("read the embedded policy library: %w", err)
	}
	return b.Check(ctx, lib, "")
}

// writeBundleSummary prints the revision, the policies (of every language) and the Rego test count of a checked
// bundle.
func writeBundleSummary(w io.Writer, b *bundles.Bundle, c *bundles.Checked) {
	if b.Manifest.Revision != "" {
		fmt.Fprintf(w, "revision: %s\n", b.Manifest.Revision)
	}
	fmt.Fprintf(w, "policies: %d\n", len(c.Policies))
	for _, p := range c.Policies {
		fmt.Fprintf(w, "  %s (%s, %s)\t%s\n", p.Name, p.Severity, p.DefaultMode, p.File)
	}
	fmt.Fprintf(w, "tests: %d passed\n", len(c.Tests))
}
