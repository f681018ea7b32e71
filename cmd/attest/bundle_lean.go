//go:build lean

package main

import "github.com/spf13/cobra"

// bundleRegistryCommands: push and pull need the registry client, so attest-full runs them.
func bundleRegistryCommands() []*cobra.Command {
	return []*cobra.Command{forwarder("push"), forwarder("pull")}
}

// newValidateBundleCommand: validate-bundle verifies signatures, so attest-full runs it.
func newValidateBundleCommand() *cobra.Command { return forwarder("validate-bundle") }
