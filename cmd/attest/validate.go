package main

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/continuums/attest/policies"
)

type validateOptions struct {
	withLibrary bool
	format      string
	crds        crdOptions
}

// problem is one reason a policy file does not load, located in the file.
type problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
	// Details is the compiler's excerpt of the line, when it gives one.
	Details []string `json:"details,omitempty"`
}

func (p problem) String() string {
	s := fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	for _, d := range p.Details {
		s += "\n\t" + d
	}
	return s
}

// validateReport is `attest policy validate --format json`.
type validateReport struct {
	Valid    bool      `json:"valid"`
	Policies []string  `json:"policies"`
	Problems []problem `json:"problems"`
}

func newValidateCommand() *cobra.Command {
	o := validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Compile policies as the webhook would and report every error with file:line",
		Long: "Parses and compiles Rego policies (Rego v0 or v1, directories recursively; *_test.rego files are left\n" +
			"to `attest policy test`) and validates Cedar policy sets (*.cedar, each file alone) against the schema of\n" +
			"`attest policy cedar-schema` (with the custom kinds of --crds, or of the cluster of --kubeconfig/--context).\nFor Rego: the webhook's rules (the rest of this text)\n" +
			"to `attest policy test`) with the webhook's rules: pure capabilities (http.send, time.now_ns and the other\n" +
			"impure built-ins are refused by name), METADATA and a violation, deny or warn rule in each package.\n" +
			"Gatekeeper ConstraintTemplates in YAML files (named, or found in the directories) are compiled as the\n" +
			"webhook compiles them (Rego and CEL, the parameters' openAPIV3Schema), and their Constraints and\n" +
			"ExpansionTemplates checked against them, each error at the file's line.\n" +
			"Exits 0 when every policy is valid, 1 when one is not, 2 when nothing can be read.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runValidate(cmd, o, args) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.withLibrary, "with-library", false, "compile together with the embedded library, as custom policies are in the cluster (finds name and package clashes)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	o.crds.add(f, true)
	return cmd
}

func runValidate(cmd *cobra.Command, o validateOptions, paths []string) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	if err := o.crds.use(cmd.Context(), cmd.ErrOrStderr()); err != nil {
		return err
	}
	cedarValid, cedarProblems, cedarFound, err := validateCedar(paths)
	if err != nil {
		return usageError(err)
	}
	regoFiles, yamlFiles, err := splitValidatePaths(regoPaths(paths))
	if err != nil {
		return usageError(err)
	}
	srcs, _, err := readRegoPaths(regoFiles)
	if err != nil {
		return usageError(err)
	}
	gkNames, gkProblems, gkFound, err := gatekeeperValidation(cmd.Context(), yamlFiles)
	if err != nil {
		return usageError(err)
	}
	if len(srcs) == 0 && !gkFound && !cedarFound {
		return usageError(fmt.Errorf("no policies (*.rego other than *_test.rego, or *.cedar) found in %s, and no Gatekeeper templates (*.yaml)", strings.Join(paths, ", ")))
	}
	report := validateReport{Policies: gkNames, Problems: gkProblems}
	all := srcs
	if len(srcs) == 0 {
		all = nil // only Cedar: nothing to compile
	} else if o.withLibrary {
		lib, _, err := policies.Library()
		if err != nil {
			return err
		}
		all = append(append([]policies.Source{}, lib...), srcs...)
	}
	// The engine stops at the first stage that fails (parsing and purity, then compiling), so files with problems
	// are set aside and the rest compiled again, until what remains compiles: every file's problems are reported
	// in one run.
	remaining := all
	if len(srcs) == 0 {
		remaining = nil
	}
	for len(remaining) > 0 {
		engine, err := policies.Compile(cmd.Context(), remaining)
		if err == nil {
			ours := map[string]bool{}
			for _, s := range srcs {
				ours[s.Name] = true
			}
			for _, p := range engine.Policies() {
				if ours[p.File] {
					report.Policies = append(report.Policies, p.Name)
				}
			}
			break
		}
		found := locate(err, remaining)
		report.Problems = append(report.Problems, found...)
		bad := map[string]bool{}
		for _, p := range found {
			bad[p.File] = true
		}
		next := remaining[:0:0]
		for _, s := range remaining {
			if !bad[s.Name] {
				next = append(next, s)
			}
		}
		if len(next) == len(remaining) {
			break // problems that name no file: nothing more to learn
		}
		remaining = next
	}
	report.Policies = append(report.Policies, cedarValid...)
	report.Problems = append(report.Problems, cedarProblems...)
	sort.Strings(report.Policies)
	sortProblems(report.Problems)
	report.Valid = len(report.Problems) == 0
	out := cmd.OutOrStdout()
	if o.format == "json" {
		if err := writeJSON(out, report); err != nil {
			return err
		}
	} else if report.Valid {
		fmt.Fprintf(out, "%s valid: %s\n", plural(len(report.Policies), "policy"), strings.Join(report.Policies, ", "))
	} else {
		for _, p := range report.Problems {
			fmt.Fprintln(out, p)
		}
	}
	if !report.Valid {
		return failure(fmt.Errorf("%s: the policies would be refused", plural(len(report.Problems), "problem")))
	}
	return nil
}

// locate turns the engine's error into problems, each at a file and line: compiler and parser errors carry their
// location; the others (METADATA, missing rules, duplicate names) name their file, and point at its METADATA
// block or package line.
func locate(err error, srcs []policies.Source) []problem {
	texts := make(map[string]string, len(srcs))
	for _, s := range srcs {
		texts[s.Name] = s.Text
	}
	var out []problem
	for _, e := range leafErrors(err) {
		var astErrs ast.Errors
		if errors.As(e, &astErrs) {
			hint := wrapperHint(e, astErrs)
			for _, ae := range astErrs {
				p := problem{Message: ae.Code + ": " + ae.Message + hint}
				if ae.Location != nil {
					p.File, p.Line = ae.Location.File, ae.Location.Row
				}
				if ae.Details != nil {
					p.Details = ae.Details.Lines()
				}
				out = append(out, p)
			}
			continue
		}
		msg := e.Error()
		p := problem{Message: msg}
		for name, text := range texts {
			if rest, ok := strings.CutPrefix(msg, name+": "); ok {
				p.File, p.Message = name, rest
				p.Line = lineOf(text, rest)
				break
			}
		}
		out = append(out, p)
	}
	return out
}

func sortProblems(ps []problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

// plural is "1 problem", "2 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// leafErrors flattens errors.Join trees (and wrappers around them) into their leaves.
func leafErrors(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	if inner := errors.Unwrap(err); inner != nil {
		if _, ok := inner.(interface{ Unwrap() []error }); ok {
			return leafErrors(inner)
		}
	}
	return []error{err}
}

// wrapperHint is what a wrapper said about compiler errors, e.g. "parse as Rego v0 (add `import rego.v1` for v1
// syntax)", as a suffix; the file name and the generic "compile policies" add nothing and are dropped.
func wrapperHint(wrapped error, astErrs ast.Errors) string {
	s := strings.TrimSuffix(wrapped.Error(), astErrs.Error())
	s = strings.TrimSuffix(strings.TrimSpace(s), ":")
	if i := strings.Index(s, ".rego: "); i >= 0 {
		s = s[i+len(".rego: "):]
	}
	if s == "" || s == "compile policies" || strings.HasSuffix(s, ".rego") {
		return ""
	}
	return " [" + s + "]"
}

var packageLine = regexp.MustCompile(`(?m)^package\s`)

// lineOf points a file-level message at the line it is about: the METADATA block for METADATA errors, else the
// package line.
func lineOf(text, msg string) int {
	if strings.HasPrefix(msg, "METADATA") {
		if i := strings.Index(text, "# METADATA"); i >= 0 {
			return strings.Count(text[:i], "\n") + 1
		}
	}
	if loc := packageLine.FindStringIndex(text); loc != nil {
		return strings.Count(text[:loc[0]], "\n") + 1
	}
	return 1
}
