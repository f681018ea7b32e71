//go:build !lean

package main

import "github.com/spf13/cobra"

// fullCommands are the commands that need a cluster client, the registry and cosign machinery, the webhook server
// or Gatekeeper's evaluation library. The lean build (bin/attest) runs them in attest-full instead.
func fullCommands(a app) (policy, root []*cobra.Command) {
	return []*cobra.Command{newVerifyCommand(a), newReplayCommand(), newExemptCommand(a), newExemptionsCommand(a)},
		[]*cobra.Command{newServeCommand(), newImageCommand()}
}

// clusterCheckHere: the full build checks the cluster itself.
func clusterCheckHere() error { return nil }
