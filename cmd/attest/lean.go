//go:build lean

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/attestation"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
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
// image then gets the facts the registry verifier gives without asking a registry). Anything else runs attest-full
// on the same sources.
func checkVerification(cfg *config.Config, offline bool, _ time.Duration, sources []manifest.Source) (admission.VerifierFunc, admission.KeychainFunc, error) {
	if offline || cfg.Trust.Len() == 0 {
		return func(cfg *config.Config) admission.ImageVerifier { return attestation.NewOfflineVerifier(cfg.Trust) }, nil, nil
	}
	return nil, nil, runFull(sources...)
}

// clusterCheckHere hands `policy check --cluster` to attest-full, which has the cluster client.
func clusterCheckHere() error { return runFull() }

// checkCluster is never reached in the lean build (clusterCheckHere handed the run over first).
func checkCluster(*cobra.Command, checkOptions, *policies.Engine, *config.Config, policies.Mode, time.Time, frameworkReport) error {
	return runFull()
}

// withGatekeeperInputs hands a check with Gatekeeper documents among its inputs, or with --inventory or
// --expand-workloads, to attest-full.
func withGatekeeperInputs(_ context.Context, _ *cobra.Command, engine *policies.Engine, o checkOptions, sources []manifest.Source) (*policies.Engine, error) {
	if g := readGatekeeperInputs(sources); len(o.inventory) == 0 && !o.expandWorkloads && g.empty() {
		return engine, nil
	}
	return nil, runFull(sources...)
}

// gatekeeperValidation hands validation to attest-full when a YAML file holds a Gatekeeper document.
func gatekeeperValidation(_ context.Context, files []string) ([]string, []problem, bool, error) {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, false, err
		}
		if bytes.Contains(data, []byte("gatekeeper.sh")) {
			return nil, nil, false, runFull()
		}
	}
	return []string{}, []problem{}, false, nil
}

// runFull replaces the process with attest-full and the same arguments; it returns only when it cannot. A stream
// the lean build has already copied (stdin, read for its PolicyExceptions) becomes attest-full's stdin: the copy,
// unlinked once open, so that nothing is left behind when attest-full ends.
func runFull(sources ...manifest.Source) error {
	full := os.Getenv(fullBinaryEnv)
	if full == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find attest-full: %w", err)
		}
		full = filepath.Join(filepath.Dir(self), "attest-full")
	}
	if _, err := os.Stat(full); err != nil {
		return failure(fmt.Errorf("this command needs the full build of attest, %s, which is not installed (`make build` builds both; or set %s)", full, fullBinaryEnv))
	}
	for _, src := range sources {
		if path, ok := src.SpooledStream(); ok {
			f, err := os.Open(path)
			if err != nil {
				return failure(fmt.Errorf("hand stdin to attest-full: %w", err))
			}
			_ = os.Remove(path)
			if err := unix.Dup2(int(f.Fd()), 0); err != nil {
				return failure(fmt.Errorf("hand stdin to attest-full: %w", err))
			}
		}
	}
	args := append([]string{full}, os.Args[1:]...)
	err := syscall.Exec(full, args, os.Environ())
	return failure(fmt.Errorf("run %s: %w", full, err))
}

// clusterCRDs hands a command reading the cluster's CRDs to attest-full, which has the cluster client.
func clusterCRDs(context.Context, clusterFlags) ([]apiextensionsv1.CustomResourceDefinition, error) {
	return nil, runFull()
}
