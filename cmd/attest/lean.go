//go:build lean

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
)

// The lean build is the CLI without a cluster client, the registry and cosign machinery, the webhook server and
// Gatekeeper's evaluation library: `attest policy check` starts in a third of the time and maps a quarter of the
// binary. What needs them runs in the full build, attest-full, installed beside it: the process replaces itself
// with attest-full and the same arguments, stdin, stdout and PID, before it has read any input.

// fullBinaryEnv names the full build to run instead of attest-full beside the lean one.
const fullBinaryEnv = "ATTEST_FULL_BINARY"

// clusterConnector stands in for the full build's cluster client: the lean build has none.
type clusterConnector func()

var kubeconfigCluster clusterConnector

// fullCommands are the full build's commands, each running attest-full.
func fullCommands(app) (policy, root []*cobra.Command) {
	return []*cobra.Command{forwarder("verify"), forwarder("replay"), forwarder("exempt"), forwarder("exemptions")},
		[]*cobra.Command{forwarder("serve"), forwarder("image")}
}

func forwarder(use string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              fullShort[use],
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return runFull() },
	}
}

// checkVerification is the offline verifier when nothing needs a registry: --offline, or no trust policy (every
// image then gets the facts the registry verifier gives without asking a registry). Anything else runs attest-full.
func checkVerification(cfg *config.Config, offline bool, _ time.Duration) (admission.VerifierFunc, admission.KeychainFunc, error) {
	if offline || cfg.Trust.Len() == 0 {
		return func(cfg *config.Config) admission.ImageVerifier { return attestation.NewOfflineVerifier(cfg.Trust) }, nil, nil
	}
	return nil, nil, runFull()
}

// runFull replaces the process with attest-full and the same arguments; it returns only when it cannot.
func runFull() error {
	full := os.Getenv(fullBinaryEnv)
	if full == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find attest-full: %w", err)
		}
		full = filepath.Join(filepath.Dir(self), "attest-full")
	}
	args := append([]string{full}, os.Args[1:]...)
	err := syscall.Exec(full, args, os.Environ())
	if errors.Is(err, os.ErrNotExist) {
		return failure(fmt.Errorf("this command needs the full build of attest, %s, which is not installed (`make build` builds both; or set %s)", full, fullBinaryEnv))
	}
	return failure(fmt.Errorf("run %s: %w", full, err))
}
