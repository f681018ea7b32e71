package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/manifest"
)

type checkOptions struct {
	files     []string
	config    string
	format    string
	now       string
	mode      string
	namespace string
}

// checkResult is one line of `attest policy check --format json`.
type checkResult struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Policy    string `json:"policy"`
	Mode      string `json:"mode"`
	Severity  string `json:"severity"`
	Path      string `json:"path,omitempty"`
	Container string `json:"container,omitempty"`
	// Message is the line the webhook would send for this violation.
	Message string `json:"message"`
	Denied  bool   `json:"denied"`
}

type checkReport struct {
	// Violations counts the violations of enforced policies: what `kubectl apply` would refuse.
	Violations int           `json:"violations"`
	Objects    int           `json:"objects"`
	Results    []checkResult `json:"results"`
}

func newCheckCommand() *cobra.Command {
	o := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check -f PATH...",
		Short: "Evaluate manifests with the webhook's decision code, offline",
		Long: "Reads manifests (files, directories recursively, or - for stdin), evaluates each object as a CREATE\n" +
			"through the same admission pipeline the webhook runs, and exits 0 when nothing would be denied,\n" +
			"1 when something would be, 2 on usage or input errors.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCheck(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: every policy as the library ships it)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now), for reproducible time-dependent results")
	f.StringVar(&o.mode, "mode", "", "audit: downgrade every enforced policy to audit")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	return cmd
}

func runCheck(cmd *cobra.Command, o checkOptions) error {
	if len(o.files) == 0 {
		return usageError(fmt.Errorf("no input: pass -f FILE, -f DIR or -f -"))
	}
	if o.format != "text" && o.format != "json" {
		return usageError(fmt.Errorf("--format must be text or json, got %q", o.format))
	}
	now := time.Now()
	if o.now != "" {
		t, err := time.Parse(time.RFC3339, o.now)
		if err != nil {
			return usageError(fmt.Errorf("--now: %w", err))
		}
		now = t
	}
	mode, err := parseGlobalMode(o.mode)
	if err != nil {
		return usageError(err)
	}
	tuneGC(-1, batchMemoryLimit)
	ctx := cmd.Context()
	engine, err := compileLibrary(ctx)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(o.config, engine)
	if err != nil {
		return usageError(err)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg), Mode: mode})
	if err != nil {
		return err
	}
	sources, err := manifest.Collect(o.files, cmd.InOrStdin())
	if err != nil {
		return usageError(err)
	}
	// Each file is read, parsed and evaluated by one worker; only its findings are kept, so memory stays flat
	// however many manifests there are.
	perFile := make([]fileReport, len(sources))
	parallel(len(sources), func(i int) { perFile[i] = checkFile(ctx, eval, sources[i], o.namespace, now) })
	report := checkReport{Results: []checkResult{}}
	var inputErrs []string
	for _, fr := range perFile {
		if fr.err != nil {
			return usageError(fr.err)
		}
		report.Objects += fr.objects
		report.Results = append(report.Results, fr.results...)
		inputErrs = append(inputErrs, fr.inputErrs...)
	}
	for _, r := range report.Results {
		if r.Denied {
			report.Violations++
		}
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		writeText(out, report)
	}
	if len(inputErrs) > 0 {
		return usageError(fmt.Errorf("some objects could not be read:\n%s", strings.Join(inputErrs, "\n")))
	}
	if report.Violations > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func writeText(w io.Writer, r checkReport) {
	for _, res := range r.Results {
		verdict := "DENY"
		if !res.Denied {
			verdict = "WARN"
		}
		obj := res.Kind + " " + res.Name
		if res.Namespace != "" {
			obj = res.Kind + " " + res.Namespace + "/" + res.Name
		}
		fmt.Fprintf(w, "%s:%d: %s %s: %s\n", res.File, res.Line, verdict, obj, res.Message)
	}
	fmt.Fprintf(w, "%d objects checked, %d violations would be denied, %d warnings\n",
		r.Objects, r.Violations, len(r.Results)-r.Violations)
}

// fileReport is what checking one file found.
type fileReport struct {
	objects   int
	results   []checkResult
	inputErrs []string // objects the pipeline could not read
	err       error    // the file itself could not be read or parsed
}

// checkFile evaluates every object of one source as a CREATE.
func checkFile(ctx context.Context, eval *admission.Evaluator, src manifest.Source, namespace string, now time.Time) fileReport {
	objects, err := manifest.Parse(src)
	if err != nil {
		return fileReport{err: err}
	}
	fr := fileReport{objects: len(objects)}
	for _, obj := range objects {
		in := admission.ObjectInput(obj.Object, namespace, now)
		d := eval.Evaluate(ctx, in)
		req := in.Request
		if d.Code == 400 || d.Code == 500 {
			fr.inputErrs = append(fr.inputErrs, fmt.Sprintf("%s:%d: %s %s: %s", obj.File, obj.Line, req.Kind, req.Name, d.Message))
			continue
		}
		for _, v := range d.Violations {
			fr.results = append(fr.results, checkResult{
				File: obj.File, Line: obj.Line, Kind: req.Kind, Namespace: req.Namespace, Name: req.Name,
				Policy: v.Policy, Mode: string(v.Mode), Severity: string(v.Severity), Path: v.Path, Container: v.Container,
				Message: v.String(), Denied: v.Denied,
			})
		}
	}
	return fr
}

// parallel runs f(0..n-1) on every core.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= n {
					return
				}
				f(j)
			}
		})
	}
	wg.Wait()
}
