// Command attest is ATTEST's one binary: the admission webhook (`attest serve`), the offline checks of the
// same decision code (`attest policy check`), the policy-as-code tools (`attest policy list|test|validate|trace|
// profile`) and the exemption workflow against a cluster (`attest policy exempt`, `attest policy exemptions`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/utils/clock"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// usageError marks bad flags or unreadable input: exit code 2.
func usageError(err error) error { return &exitError{code: 2, err: err} }

// failure marks a command that ran and found something wrong (a denial, a failed test, an invalid policy, a
// refused API call): exit code 1.
func failure(err error) error { return &exitError{code: 1, err: err} }

// app holds what commands get from outside the process: the cluster connection, the clock, and where
// configuration files are (the working directory, the home directory, the environment). main wires the real
// ones; tests pass a fake client, a fixed clock and temporary directories.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// cluster connects to the API server the way kubectl does (kubeconfig, context, namespace).
	cluster clusterConnector
	clock   clock.PassiveClock
	// workDir and homeDir locate the project's .attest/ and the global ~/.config/attest/policies.yaml; getenv
	// reads XDG_CONFIG_HOME. Nil: no configuration file is looked for.
	workDir func() (string, error)
	homeDir func() (string, error)
	getenv  func(string) string
	// name is how the user invoked the binary, for help and usage: "attest", or "kubectl attest" when kubectl
	// ran it as the plugin kubectl-attest.
	name string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runApp(ctx, os.Args[1:], app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, cluster: kubeconfigCluster,
		clock: clock.RealClock{}, workDir: os.Getwd, homeDir: os.UserHomeDir, getenv: os.Getenv, name: commandName(os.Args[0])})
	stop()
	os.Exit(code)
}

// run executes the CLI and returns the exit code; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runApp(ctx, args, app{stdin: stdin, stdout: stdout, stderr: stderr, cluster: kubeconfigCluster, clock: clock.RealClock{},
		workDir: os.Getwd, homeDir: os.UserHomeDir, getenv: os.Getenv})
}

// commandName is "kubectl attest" when the binary runs as the kubectl plugin (installed as kubectl-attest, which
// kubectl finds on PATH and runs with the arguments after `kubectl attest`), else "attest"; the commands are the
// same either way.
func commandName(argv0 string) string {
	base := filepath.Base(argv0)
	if strings.HasPrefix(base, "kubectl-attest") {
		return "kubectl attest"
	}
	return "attest"
}

// runApp executes the CLI with the given surroundings and returns the exit code.
func runApp(ctx context.Context, args []string, a app) int {
	root := newRootCommand(a)
	root.SetArgs(args)
	err := root.ExecuteContext(withConfigEnv(ctx, a))
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(a.stderr, "error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(a.stderr, "error:", err)
	return 2
}

// fullShort describes the commands of the full build, which the lean build's stand-ins describe alike.
var fullShort = map[string]string{
	"serve":           "Run the admission webhook over TLS",
	"image":           "Verify container images against the trust policies",
	"verify":          "Run Gatekeeper test suites (Suite files) like `gator verify`",
	"replay":          "Re-run recorded admissions against a configuration and show what would change",
	"exempt":          "Write a PolicyException (print its YAML, or create it with --apply)",
	"exemptions":      "Inspect the cluster's PolicyExceptions",
	"push":            "Push a policy bundle (DIR or FILE) to a registry as an OCI artifact",
	"pull":            "Pull a policy bundle from a registry into a directory",
	"validate-bundle": "Verify a policy bundle's signature against the trust section, compile it and run its tests",
}

func newRootCommand(a app) *cobra.Command {
	root := &cobra.Command{
		Use:           "attest",
		Short:         "ATTEST: supply-chain verification and policy for Kubernetes admission",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	if a.name != "" {
		// Help and usage show the command line as typed: `kubectl attest policy check` for the plugin.
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: a.name}
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	policy := &cobra.Command{Use: "policy", Short: "Check manifests, develop policies and manage exemptions"}
	policy.AddCommand(
		newCheckCommand(),
		newListCommand(),
		newTestCommand(),
		newValidateCommand(),
		newProfileCommand(),
		newTraceCommand(),
		newCedarSchemaCommand(),
		newAuthorizeCommand(),
		newBundleCommand(),
		newValidateBundleCommand(),
		newWorkbenchCommand(),
		newPlaygroundCommand(),
		newGenerateTestsCommand(),
		newConflictsCommand(),
		newLintCommand(),
		newOptimizeCommand(),
		newExportCommand(),
		newTestAllCommand(),
		newScanCommand(),
	)
	fullPolicy, fullRoot := fullCommands(a)
	policy.AddCommand(fullPolicy...)
	root.AddCommand(policy)
	root.AddCommand(fullRoot...)
	return root
}
