package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/workbench"
)

type workbenchOptions struct {
	log       string
	config    string
	policy    []string
	input     []string
	listen    string
	saveDir   string
	selected  string
	namespace string
	now       string
}

func (o *workbenchOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "policies.yaml (default: the project's .attest/ files over ~/.config/attest/policies.yaml)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address to serve the page on (port 0: any free port)")
	f.StringVar(&o.saveDir, "save-dir", "", "where \"save as test\" writes _test.rego files (default: the directory of the first --policy, else .)")
	f.StringVar(&o.selected, "select", "", "the policy the page opens with (default: the first of --policy, else the first by name)")
}

func newWorkbenchCommand() *cobra.Command {
	o := workbenchOptions{}
	cmd := &cobra.Command{
		Use:   "workbench [--log decisions.jsonl] [--config F] [--policy DIR]",
		Short: "Serve a local page to replay recorded admissions with edited policies, trace them and save tests",
		Long: "Serves a page on 127.0.0.1 (the URL is printed): the admissions recorded with their input by `attest\n" +
			"serve --log-inputs` or a policy's sample rule, newest first and coloured by decision; choosing one shows\n" +
			"its input and a policy's source, both editable; Evaluate runs the webhook's pipeline with the edited source\n" +
			"(compile errors at their line), shows the findings, OPA's trace and what changed against the recorded\n" +
			"verdict; Save as test writes a _test.rego case asserting what the policy reports. Images are checked as\n" +
			"with `policy check --offline` (the log keeps no image facts). Stops on Ctrl-C.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorkbench(cmd, o) },
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.log, "log", "", "decision log (JSON lines) of attest serve --log-inputs; - for stdin")
	cmd.Flags().StringSliceVar(&o.policy, "policy", nil, "your policies: .rego files or directories, compiled with the library (repeatable)")
	return cmd
}

func newPlaygroundCommand() *cobra.Command {
	o := workbenchOptions{}
	cmd := &cobra.Command{
		Use:   "playground --policy P --input F",
		Short: "Open the workbench on the objects of a manifest with your policy selected",
		Long: "The workbench (see `attest policy workbench --help`) with the objects of --input as its inputs (each a\n" +
			"CREATE, as `attest policy check` reads them) and the policy of --policy selected.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.policy) == 0 || len(o.input) == 0 {
				return usageError(fmt.Errorf("--policy and --input are required"))
			}
			return runWorkbench(cmd, o)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&o.policy, "policy", nil, "your policy: a .rego file or a directory (repeatable)")
	f.StringSliceVarP(&o.input, "input", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now)")
	return cmd
}

func runWorkbench(cmd *cobra.Command, o workbenchOptions) error {
	ctx := cmd.Context()
	wb, err := buildWorkbench(ctx, cmd, o)
	if err != nil {
		return err
	}
	l, err := listenLoopback(o.listen)
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "workbench: http://%s/ (%d recorded inputs, %d policies; Ctrl-C stops it)\n", l.Addr(), len(wb.Records()), len(wb.Policies()))
	return wb.Serve(ctx, l)
}

// buildWorkbench reads the sources, the records and the configuration the workbench evaluates with.
func buildWorkbench(ctx context.Context, cmd *cobra.Command, o workbenchOptions) (*workbench.Workbench, error) {
	lib, _, err := policies.Library()
	if err != nil {
		return nil, err
	}
	var own []policies.Source
	if len(o.policy) > 0 {
		if own, _, err = readRegoPaths(o.policy); err != nil {
			return nil, usageError(fmt.Errorf("--policy: %w", err))
		}
		if len(own) == 0 {
			return nil, usageError(fmt.Errorf("--policy: no .rego policy in %v", o.policy))
		}
	}
	srcs := append(append([]policies.Source(nil), lib...), own...)
	selected := o.selected
	if selected == "" && len(own) > 0 {
		if e, err := policies.Compile(ctx, own); err == nil && len(e.Policies()) > 0 {
			selected = e.Policies()[0].Name
		}
	}
	saveDir := o.saveDir
	if saveDir == "" && len(o.policy) > 0 {
		saveDir = o.policy[0]
		if info, err := os.Stat(saveDir); err == nil && !info.IsDir() {
			saveDir = filepath.Dir(saveDir)
		}
	}
	var records []workbench.Record
	switch {
	case o.log != "":
		in := cmd.InOrStdin()
		if o.log != "-" {
			f, err := os.Open(o.log)
			if err != nil {
				return nil, usageError(fmt.Errorf("--log: %w", err))
			}
			defer func() { _ = f.Close() }()
			in = f
		}
		var skipped int
		if records, skipped, err = workbench.ReadLog(in, o.log); err != nil {
			return nil, usageError(err)
		}
		if skipped > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "workbench: %s: %d admissions recorded without their input (or truncated) are not listed\n", o.log, skipped)
		}
	case len(o.input) > 0:
		if records, err = manifestRecords(cmd, o); err != nil {
			return nil, err
		}
	}
	wb, err := workbench.New(ctx, workbench.Options{
		Sources: srcs, Records: records, SaveDir: saveDir, Selected: selected,
		Config: func(e *policies.Engine) (*config.Config, error) { return loadConfig(ctx, o.config, e) },
	})
	if err != nil {
		return nil, usageError(err)
	}
	return wb, nil
}

// manifestRecords are the objects of --input as the CREATE requests `attest policy check` makes of them.
func manifestRecords(cmd *cobra.Command, o workbenchOptions) ([]workbench.Record, error) {
	now, err := parseNow(o.now)
	if err != nil {
		return nil, err
	}
	sources, err := manifest.Collect(o.input, cmd.InOrStdin())
	if err != nil {
		return nil, usageError(err)
	}
	var records []workbench.Record
	err = eachObject(sources, func(obj manifest.Object) error {
		in := admission.ObjectInput(obj.Object, o.namespace, now)
		records = append(records, workbench.Record{
			ID: len(records), Source: fmt.Sprintf("%s:%d", obj.File, obj.Line), Operation: in.Request.Operation,
			Kind: in.Request.Kind, Namespace: in.Request.Namespace, Name: in.Request.Name,
			Input: workbench.RecordedInput{Request: in.Request, Object: in.Object},
		})
		return nil
	})
	if err != nil {
		return nil, usageError(err)
	}
	return records, nil
}

// listenLoopback listens on addr, which must name a loopback address: the page evaluates the code it is sent.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--listen: %s is not a loopback address: the workbench serves only this machine (127.0.0.1 or ::1)", host)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	return l, nil
}
