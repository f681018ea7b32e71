//go:build !lean

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/webhook"
)

type replayOptions struct {
	log    string
	config string
	format string
	output string
	mode   string
}

func newReplayCommand() *cobra.Command {
	o := replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay --log decisions.jsonl [--config proposed-policies.yaml]",
		Short: fullShort["replay"],
		Long: "Reads the decision log of `attest serve --log-inputs` (or the evaluations a policy's sample rule\n" +
			"recorded), re-runs each recorded request through the same pipeline with the current or a proposed\n" +
			"configuration, and lists the requests that would newly be denied, newly be allowed, or get a different\n" +
			"message. Exit 1 when any request would newly be denied: the question to answer before enforcing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReplay(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.log, "log", "", "decision log (JSON lines; - for stdin)")
	f.StringVar(&o.config, "config", "", "the configuration to replay against (default: every policy as the library ships it)")
	f.StringVar(&o.format, "format", "text", "text or json")
	f.StringVar(&o.output, "output", "", "write the report to this file instead of stdout")
	f.StringVar(&o.mode, "mode", "", "audit: downgrade every enforced policy")
	return cmd
}

// recordedLine is what replay reads of a decision log line.
type recordedLine struct {
	Msg      string               `json:"msg"`
	Decision string               `json:"decision"`
	Message  string               `json:"message"`
	Input    *webhook.LoggedInput `json:"input"`
}

// replayChange is one request whose outcome differs.
type replayChange struct {
	UID       string  `json:"uid"`
	Operation string  `json:"operation"`
	Kind      string  `json:"kind"`
	Namespace string  `json:"namespace,omitempty"`
	Name      string  `json:"name,omitempty"`
	User      string  `json:"user"`
	Before    verdict `json:"before"`
	After     verdict `json:"after"`
}

type verdict struct {
	Decision string `json:"decision"`
	Message  string `json:"message,omitempty"`
}

type replayReport struct {
	Log            string         `json:"log"`
	Replayed       int            `json:"replayed"`
	Skipped        int            `json:"skipped"`
	Unchanged      int            `json:"unchanged"`
	NewlyDenied    []replayChange `json:"newlyDenied"`
	NewlyAllowed   []replayChange `json:"newlyAllowed"`
	MessageChanged []replayChange `json:"messageChanged"`
}

func runReplay(cmd *cobra.Command, o replayOptions) error {
	if o.log == "" {
		return usageError(fmt.Errorf("--log is required (a decision log written with `attest serve --log-inputs`)"))
	}
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	mode, err := parseGlobalMode(o.mode)
	if err != nil {
		return usageError(err)
	}
	ctx := cmd.Context()
	engine, cfg, err := engineAndConfig(ctx, o.config)
	if err != nil {
		return err
	}
	lib, _, err := policies.Library()
	if err != nil {
		return err
	}
	eval, err := admission.New(admission.Options{Engine: engine, Config: cfgFunc(cfg), Mode: mode, Library: lib})
	if err != nil {
		return err
	}
	in := cmd.InOrStdin()
	if o.log != "-" {
		f, err := os.Open(o.log)
		if err != nil {
			return usageError(fmt.Errorf("--log: %w", err))
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	report, err := replay(ctx, eval, in, o.log)
	if err != nil {
		return usageError(err)
	}
	if err := emit(cmd, o.output, func(w io.Writer) error { return writeReplay(w, o.format, report) }); err != nil {
		return err
	}
	if len(report.NewlyDenied) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// replay re-decides every recorded request; lines without a usable input are counted as skipped.
func replay(ctx context.Context, eval *admission.Evaluator, r io.Reader, name string) (*replayReport, error) {
	report := &replayReport{Log: name, NewlyDenied: []replayChange{}, NewlyAllowed: []replayChange{}, MessageChanged: []replayChange{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		var rec recordedLine
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: not a decision log line: %w", name, line, err)
		}
		if rec.Msg != "admission" {
			continue
		}
		if rec.Input == nil || rec.Input.Truncated > 0 || (rec.Input.Object == nil && rec.Input.Request.Operation != "DELETE") {
			report.Skipped++
			continue
		}
		report.Replayed++
		d := eval.Evaluate(ctx, admission.Input{Request: rec.Input.Request, Object: rec.Input.Object, OldObject: rec.Input.OldObject})
		after := verdict{Decision: d.AuditAnnotations[admission.AnnotationDecision], Message: d.Message}
		before := verdict{Decision: rec.Decision, Message: rec.Message}
		req := rec.Input.Request
		change := replayChange{UID: req.UID, Operation: req.Operation, Kind: req.Kind, Namespace: req.Namespace, Name: req.Name, User: req.Username, Before: before, After: after}
		denied := func(v verdict) bool {
			return v.Decision == admission.DecisionDenied || v.Decision == admission.DecisionError
		}
		switch {
		case !denied(before) && denied(after):
			report.NewlyDenied = append(report.NewlyDenied, change)
		case denied(before) && !denied(after):
			report.NewlyAllowed = append(report.NewlyAllowed, change)
		case before.Message != after.Message:
			report.MessageChanged = append(report.MessageChanged, change)
		default:
			report.Unchanged++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return report, nil
}

func writeReplay(w io.Writer, format string, r *replayReport) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "replayed %d admissions from %s (%d skipped: no input recorded), %d unchanged\n", r.Replayed, r.Log, r.Skipped, r.Unchanged)
	for _, group := range []struct {
		title string
		list  []replayChange
	}{{"newly denied", r.NewlyDenied}, {"newly allowed", r.NewlyAllowed}, {"message changed", r.MessageChanged}} {
		fmt.Fprintf(w, "%s: %d\n", group.title, len(group.list))
		for _, c := range group.list {
			object := c.Kind + " " + c.Name
			if c.Namespace != "" {
				object = c.Kind + " " + c.Namespace + "/" + c.Name
			}
			fmt.Fprintf(w, "  %s (%s by %s, uid %s)\n    before: %s %s\n    after:  %s %s\n", object, c.Operation, c.User, c.UID,
				c.Before.Decision, c.Before.Message, c.After.Decision, c.After.Message)
		}
	}
	return nil
}
