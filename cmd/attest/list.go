package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/continuums/attest/config"
	"github.com/continuums/attest/policies"
)

type listOptions struct {
	format    string
	framework string
	config    string
	output    string
}

// catalogueEntry is one policy of `attest policy list --format json`: its METADATA, parameters as a list.
type catalogueEntry struct {
	Name string `json:"name"`
	// Engine evaluates the policy: opa (Rego), cedar or gatekeeper.
	Engine      string              `json:"engine"`
	Title       string              `json:"title"`
	Description string              `json:"description,omitempty"`
	Severity    policies.Severity   `json:"severity"`
	DefaultMode policies.Mode       `json:"defaultMode"`
	Remediation string              `json:"remediation,omitempty"`
	Parameters  []parameterEntry    `json:"parameters"`
	Compliance  map[string][]string `json:"compliance,omitempty"`
	Package     string              `json:"package"`
	File        string              `json:"file"`
}

// parameterEntry is one parameter as its JSON schema declares it.
type parameterEntry struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	// Schema is the parameter's whole JSON schema (patterns, enums, item types).
	Schema map[string]any `json:"schema"`
}

// frameworkReport is `attest policy list --framework F --format json`.
type frameworkReport struct {
	Framework string          `json:"framework"`
	Controls  []controlPolicy `json:"controls"`
}

type controlPolicy struct {
	Control     string          `json:"control"`
	Description string          `json:"description,omitempty"`
	Policies    []policySummary `json:"policies"`
}

type policySummary struct {
	Name        string            `json:"name"`
	Title       string            `json:"title"`
	Severity    policies.Severity `json:"severity"`
	DefaultMode policies.Mode     `json:"defaultMode"`
}

func newListCommand() *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the policy catalogue from each policy's METADATA",
		Long: "Prints every policy the configuration runs (the built-in library, custom_policies and Cedar sets;\n" +
			"--config, or the .attest files found as for check): name, engine, severity, default mode, title and\n" +
			"parameters (type, default, description). With --framework, prints the framework's controls and the policies behind each: the\n" +
			"policies' METADATA mapping, plus the compliance: section of --config (which can add controls or disable\n" +
			"a framework).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runList(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVar(&o.framework, "framework", "", "list the controls of this compliance framework (soc2, gdpr, hipaa) and the policies behind each")
	f.StringVar(&o.config, "config", "", "policies.yaml whose custom policies and Cedar sets are listed too, and whose compliance: section adds to or re-maps the METADATA controls (with --framework)")
	f.StringVarP(&o.output, "output", "o", "", "write the report to FILE instead of stdout")
	return cmd
}

func runList(cmd *cobra.Command, o listOptions) error {
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	// The catalogue as the configuration sees it: the library, its custom_policies and its Cedar sets.
	engine, cfg, err := engineAndConfig(cmd.Context(), o.config)
	if err != nil {
		return err
	}
	metas := make([]policies.Metadata, 0, len(engine.Policies()))
	engines := make(map[string]string, len(engine.Policies()))
	for _, p := range engine.Policies() {
		metas = append(metas, p.Metadata)
		engines[p.Name] = p.Engine()
	}
	if o.framework != "" {
		report, err := byFramework(metas, cfg, strings.ToLower(o.framework))
		if err != nil {
			return usageError(err)
		}
		return emit(cmd, o.output, func(w io.Writer) error {
			if o.format == "json" {
				return writeJSON(w, report)
			}
			return writeFrameworkText(w, report)
		})
	}
	entries := catalogue(metas)
	for i := range entries {
		entries[i].Engine = engines[entries[i].Name]
	}
	return emit(cmd, o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, entries)
		}
		return writeCatalogueText(w, entries)
	})
}

// catalogue turns METADATA into list entries, sorted by name, parameters by name.
func catalogue(metas []policies.Metadata) []catalogueEntry {
	out := make([]catalogueEntry, 0, len(metas))
	for _, m := range metas {
		e := catalogueEntry{
			Name: m.Name, Title: m.Title, Description: m.Description, Severity: m.Severity, DefaultMode: m.DefaultMode,
			Remediation: m.Remediation, Compliance: m.Compliance, Package: m.Package, File: m.File,
			Parameters: []parameterEntry{},
		}
		for name, raw := range m.Parameters {
			schema, _ := raw.(map[string]any) // Compile has checked each is a schema object
			p := parameterEntry{Name: name, Type: schemaType(schema), Default: schema["default"], Schema: schema}
			p.Description, _ = schema["description"].(string)
			e.Parameters = append(e.Parameters, p)
		}
		sort.Slice(e.Parameters, func(i, j int) bool { return e.Parameters[i].Name < e.Parameters[j].Name })
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// schemaType names a parameter's type as its schema declares it: "string", "array of string", "integer|string".
func schemaType(schema map[string]any) string {
	var t string
	switch v := schema["type"].(type) {
	case string:
		t = v
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				parts = append(parts, s)
			}
		}
		t = strings.Join(parts, "|")
	}
	if t == "" {
		switch {
		case schema["enum"] != nil:
			t = "enum"
		case schema["properties"] != nil:
			t = "object"
		default:
			t = "any"
		}
	}
	if t == "array" {
		if items, ok := schema["items"].(map[string]any); ok {
			if it := schemaType(items); it != "any" {
				t += " of " + it
			}
		}
	}
	return t
}

// byFramework lists a framework's controls and the policies behind each, as the configuration maps them (the
// policies' METADATA plus the config's compliance section; a framework the config disables has no controls).
func byFramework(metas []policies.Metadata, cfg *config.Config, framework string) (frameworkReport, error) {
	known := map[string]bool{}
	byName := map[string]policies.Metadata{}
	for _, m := range metas {
		byName[m.Name] = m
		for fw := range m.Compliance {
			known[fw] = true
		}
	}
	for fw := range cfg.Compliance {
		known[fw] = true
	}
	if !known[framework] {
		names := make([]string, 0, len(known))
		for fw := range known {
			names = append(names, fw)
		}
		sort.Strings(names)
		return frameworkReport{}, fmt.Errorf("--framework: no policy maps framework %q; the catalogue maps %s", framework, strings.Join(names, ", "))
	}
	report := frameworkReport{Framework: framework, Controls: []controlPolicy{}}
	for _, c := range cfg.Controls(cfg.Engine, framework) {
		cp := controlPolicy{Control: c.ID, Description: c.Description}
		for _, name := range c.Policies {
			m := byName[name]
			cp.Policies = append(cp.Policies, policySummary{Name: name, Title: m.Title, Severity: m.Severity, DefaultMode: m.DefaultMode})
		}
		report.Controls = append(report.Controls, cp)
	}
	sort.SliceStable(report.Controls, func(i, j int) bool { return naturalLess(report.Controls[i].Control, report.Controls[j].Control) })
	return report, nil
}

// naturalLess orders control IDs as people number them: Art. 5 < Art. 6 < Art. 30, CC6.8 < CC6.10.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
		if ad && bd {
			na, ra := leadingNumber(a)
			nb, rb := leadingNumber(b)
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingNumber(s string) (int, string) {
	n, i := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n < 1<<30 {
			n = n*10 + int(s[i]-'0')
		}
		i++
	}
	return n, s[i:]
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeCatalogueText(w io.Writer, entries []catalogueEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENGINE\tSEVERITY\tDEFAULT MODE\tTITLE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Engine, e.Severity, e.DefaultMode, e.Title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		if len(e.Parameters) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s parameters:\n", e.Name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, p := range e.Parameters {
			def := "-"
			if p.Default != nil {
				b, _ := json.Marshal(p.Default) // decoded from METADATA: always marshals
				def = string(b)
			}
			desc := p.Description
			if desc == "" {
				desc = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, p.Type, def, desc)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func writeFrameworkText(w io.Writer, r frameworkReport) error {
	if len(r.Controls) == 0 {
		_, err := fmt.Fprintf(w, "%s: no controls (the configuration disables the framework)\n", r.Framework)
		return err
	}
	fmt.Fprintf(w, "%s controls and the policies that serve them:\n", r.Framework)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTROL\tPOLICIES")
	for _, c := range r.Controls {
		names := make([]string, len(c.Policies))
		for i, p := range c.Policies {
			names[i] = fmt.Sprintf("%s (%s, %s)", p.Name, p.Severity, p.DefaultMode)
		}
		line := strings.Join(names, ", ")
		if c.Description != "" {
			line += " — " + c.Description
		}
		fmt.Fprintf(tw, "%s\t%s\n", c.Control, line)
	}
	return tw.Flush()
}
