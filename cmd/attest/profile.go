package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
)

type profileOptions struct {
	files     []string
	config    string
	format    string
	output    string
	now       string
	namespace string
	repeat    int
}

// profileReport is `attest policy profile --format json`; durations are nanoseconds.
type profileReport struct {
	Objects     int             `json:"objects"`
	Repeat      int             `json:"repeat"`
	Evaluations int             `json:"evaluations"`
	TotalNs     int64           `json:"totalNs"`
	Policies    []policyProfile `json:"policies"`
}

// policyProfile is one policy's evaluation times over every object (and repetition).
type policyProfile struct {
	Policy      string  `json:"policy"`
	Evaluations int     `json:"evaluations"`
	TotalNs     int64   `json:"totalNs"`
	MeanNs      int64   `json:"meanNs"`
	P50Ns       int64   `json:"p50Ns"`
	P99Ns       int64   `json:"p99Ns"`
	MaxNs       int64   `json:"maxNs"`
	Share       float64 `json:"share"`
}

func newProfileCommand() *cobra.Command {
	o := profileOptions{}
	cmd := &cobra.Command{
		Use:   "profile -f PATH...",
		Short: "Time each policy's evaluation over manifests, slowest first",
		Long: "Evaluates every object of the manifests through the admission pipeline, one at a time, and reports per\n" +
			"policy the number of evaluations, total, mean, median, p99 and maximum time and its share of the total,\n" +
			"slowest (largest total) first. Exits 0, or 2 when an input cannot be read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProfile(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringVar(&o.config, "config", "", "policies.yaml (default: every policy as the library ships it)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	f.StringVar(&o.now, "now", "", "request time as RFC 3339 (default: now)")
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace for objects that name none")
	f.IntVar(&o.repeat, "repeat", 1, "evaluate every object this many times (steadier numbers for small inputs)")
	return cmd
}

func runProfile(cmd *cobra.Command, o profileOptions) error {
	if len(o.files) == 0 {
		return usageError(fmt.Errorf("no input: pass -f FILE, -f DIR or -f -"))
	}
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	if o.repeat < 1 {
		return usageError(fmt.Errorf("--repeat must be at least 1, got %d", o.repeat))
	}
	now, err := parseNow(o.now)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	engine, cfg, err := engineAndConfig(ctx, o.config)
	if err != nil {
		return err
	}
	engine.SetMemo(false) // each repetition is measured, not a memo hit
	// Measured as attest serve runs them once warm: through their plans, not topdown's first evaluations.
	var running []string
	for _, p := range engine.Policies() {
		if s := cfg.Policies[p.Name]; s.Mode != policies.ModeOff && s.Mode != "" {
			running = append(running, p.Name)
		}
	}
	if len(running) > 0 {
		engine.Plan(running...)
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg)})
	if err != nil {
		return err
	}
	sources, err := manifest.Collect(o.files, cmd.InOrStdin())
	if err != nil {
		return usageError(err)
	}
	// One object at a time: concurrent evaluations would measure contention for the cores, not the policies.
	samples := map[string][]time.Duration{}
	report := profileReport{Repeat: o.repeat}
	var inputErrs []string
	err = eachObject(sources, func(obj manifest.Object) error {
		report.Objects++
		in := admission.ObjectInput(obj.Object, o.namespace, now)
		for range o.repeat {
			d := eval.Evaluate(ctx, in)
			if d.Code == 400 || d.Code == 500 {
				inputErrs = append(inputErrs, fmt.Sprintf("%s:%d: %s %s: %s", obj.File, obj.Line, in.Request.Kind, in.Request.Name, d.Message))
				break
			}
			for _, r := range d.Results {
				samples[r.Policy] = append(samples[r.Policy], r.Duration)
			}
		}
		return nil
	})
	if err != nil {
		return usageError(err)
	}
	report.Policies = profiles(samples)
	for _, p := range report.Policies {
		report.Evaluations += p.Evaluations
		report.TotalNs += p.TotalNs
	}
	for i := range report.Policies {
		if report.TotalNs > 0 {
			report.Policies[i].Share = math.Round(float64(report.Policies[i].TotalNs)/float64(report.TotalNs)*1000) / 1000
		}
	}
	err = emit(cmd, o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, report)
		}
		return writeProfileText(w, report)
	})
	if err != nil {
		return err
	}
	if len(inputErrs) > 0 {
		return usageError(fmt.Errorf("some objects could not be read:\n%s", strings.Join(inputErrs, "\n")))
	}
	return nil
}

// profiles summarises each policy's samples, largest total first (ties by name).
func profiles(samples map[string][]time.Duration) []policyProfile {
	out := make([]policyProfile, 0, len(samples))
	for name, ds := range samples {
		slices.Sort(ds)
		var total time.Duration
		for _, d := range ds {
			total += d
		}
		out = append(out, policyProfile{
			Policy: name, Evaluations: len(ds), TotalNs: int64(total), MeanNs: int64(total) / int64(len(ds)),
			P50Ns: int64(percentile(ds, 50)), P99Ns: int64(percentile(ds, 99)), MaxNs: int64(ds[len(ds)-1]),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TotalNs != out[j].TotalNs {
			return out[i].TotalNs > out[j].TotalNs
		}
		return out[i].Policy < out[j].Policy
	})
	return out
}

// percentile is the nearest-rank percentile of sorted, non-empty samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func writeProfileText(w io.Writer, r profileReport) error {
	fmt.Fprintf(w, "%d objects, %d policy evaluations (repeat %d), %s in policies\n\n", r.Objects, r.Evaluations, r.Repeat, roundDuration(time.Duration(r.TotalNs)))
	// Numbers align right; the policy column is padded to one width so that it reads left-aligned.
	width := len("POLICY")
	for _, p := range r.Policies {
		width = max(width, len(p.Policy))
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tEVALUATIONS\tTOTAL\tMEAN\tP50\tP99\tMAX\tSHARE\t\n", width, "POLICY")
	for _, p := range r.Policies {
		fmt.Fprintf(tw, "%-*s\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t\n", width, p.Policy, p.Evaluations,
			roundDuration(time.Duration(p.TotalNs)), roundDuration(time.Duration(p.MeanNs)), roundDuration(time.Duration(p.P50Ns)),
			roundDuration(time.Duration(p.P99Ns)), roundDuration(time.Duration(p.MaxNs)), p.Share*100)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Right alignment pads the first column too; take that padding off.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if _, err := io.WriteString(w, strings.TrimPrefix(line, "  ")); err != nil {
			return err
		}
	}
	return nil
}

// roundDuration keeps three significant digits: 1.23ms, 456µs, 2.5s.
func roundDuration(d time.Duration) time.Duration {
	for unit := time.Duration(1); unit < time.Hour; unit *= 10 {
		if d < unit*1000 {
			return d.Round(unit)
		}
	}
	return d.Round(time.Second)
}
