//go:build lean

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/bundles"
)

// bundleRegistryCommands: push and pull need the registry client, so attest-full runs them.
func bundleRegistryCommands() []*cobra.Command {
	return []*cobra.Command{forwarder("push"), forwarder("pull")}
}

// newValidateBundleCommand: validate-bundle verifies signatures, so attest-full runs it.
func newValidateBundleCommand() *cobra.Command { return forwarder("validate-bundle") }

// bundleCheckHere hands a bundle with Gatekeeper files to attest-full: the lean build leaves Gatekeeper's library
// out (bundles.ErrFullBuild).
func bundleCheckHere(b *bundles.Bundle) error {
	if len(b.ByKind(bundles.KindGatekeeper)) > 0 {
		return runFull()
	}
	return nil
}

// configHere hands a configuration whose policy_bundle_path bundle holds Gatekeeper files to attest-full, which
// can check them; any other error is returned as it is.
func configHere(err error) error {
	if errors.Is(err, bundles.ErrFullBuild) {
		return runFull()
	}
	return err
}
