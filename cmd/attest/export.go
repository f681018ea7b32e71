package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper/export"
)

// newExportCommand writes the library's policies in another tool's format. It runs in the lean binary: it reads
// the embedded library and writes YAML, nothing else.
func newExportCommand() *cobra.Command {
	var format, output string
	var names []string
	cmd := &cobra.Command{
		Use:   "export --format gatekeeper [--policy NAME]... [-o FILE]",
		Short: "Write library policies as Gatekeeper ConstraintTemplates and Constraints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "gatekeeper" {
				return usageError(fmt.Errorf("--format %q: want gatekeeper", format))
			}
			out, err := exportGatekeeper(cmd.Context(), names)
			if err != nil {
				return usageError(err)
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			if err := os.WriteFile(output, out, 0o644); err != nil { //nolint:gosec // manifests for kubectl apply, not secrets
				return fmt.Errorf("-o %s: %w", output, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "output format: gatekeeper (ConstraintTemplates and Constraints, templates.gatekeeper.sh/v1)")
	f.StringSliceVar(&names, "policy", nil, "policy to export (repeatable; default: every exportable policy: "+fmt.Sprint(export.Policies)+")")
	f.StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}

// exportGatekeeper is the YAML stream of the named policies' templates and constraints.
func exportGatekeeper(ctx context.Context, names []string) ([]byte, error) {
	lib, _, err := policies.Library()
	if err != nil {
		return nil, fmt.Errorf("read the embedded policy library: %w", err)
	}
	engine, err := compileLibrary(ctx)
	if err != nil {
		return nil, err
	}
	objs, err := export.Objects(engine, lib, names)
	if err != nil {
		return nil, err
	}
	return export.YAML(objs)
}
