package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuums/attest/policies"
)

// fixedCatalogue is METADATA that does not change when the library does, for the golden files of the rendering.
func fixedCatalogue() []policies.Metadata {
	return []policies.Metadata{
		{
			Name: "resource-limits", Title: "Resource limits", Severity: policies.SeverityMedium, DefaultMode: policies.ModeAudit,
			Remediation: "set resources.limits", Package: "attest.library.resource_limits", File: "library/reliability/resource-limits.rego",
			Parameters: map[string]any{
				"require_limits": map[string]any{"type": "boolean", "default": true, "description": "every container sets limits"},
				"max_cpu":        map[string]any{"type": "string", "description": "the largest CPU limit"},
				"default_limits": map[string]any{"type": "object", "default": map[string]any{"cpu": "500m"}},
			},
			Compliance: map[string][]string{"soc2": {"A1.1"}, "hipaa": {"164.308(a)(7)"}},
		},
		{
			Name: "no-privileged", Title: "No privileged containers", Severity: policies.SeverityCritical, DefaultMode: policies.ModeEnforce,
			Package: "attest.library.no_privileged", File: "library/security/no-privileged.rego",
			Compliance: map[string][]string{"soc2": {"CC6.1", "CC6.8"}, "gdpr": {"Art. 32"}},
		},
		{
			Name: "gdpr-annotations", Title: "GDPR", Severity: policies.SeverityMedium, DefaultMode: policies.ModeAudit,
			Parameters: map[string]any{"keys": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "default": []any{}}},
			Compliance: map[string][]string{"gdpr": {"Art. 30", "Art. 5(1)(e)", "Art. 6"}, "soc2": {"P4.2", "CC6.10"}},
		},
	}
}

func TestListRenderingGolden(t *testing.T) {
	entries := catalogue(fixedCatalogue())
	for i := range entries {
		entries[i].Engine = "opa"
	}
	var text, js bytes.Buffer
	if err := writeCatalogueText(&text, entries); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&js, entries); err != nil {
		t.Fatal(err)
	}
	golden(t, "list.golden.text", text.String())
	golden(t, "list.golden.json", js.String())
	report := frameworkReport{Framework: "soc2", Controls: []controlPolicy{
		{Control: "A1.1", Policies: []policySummary{{Name: "resource-limits", Severity: policies.SeverityMedium, DefaultMode: policies.ModeAudit}}},
		{Control: "CC6.1", Description: "logical access", Policies: []policySummary{
			{Name: "no-privileged", Severity: policies.SeverityCritical, DefaultMode: policies.ModeEnforce},
			{Name: "trusted-registries", Severity: policies.SeverityHigh, DefaultMode: policies.ModeEnforce},
		}},
	}}
	var out bytes.Buffer
	if err := writeFrameworkText(&out, report); err != nil {
		t.Fatal(err)
	}
	golden(t, "list-framework.golden.text", out.String())
}

func TestSchemaType(t *testing.T) {
	cases := []struct {
		name   string
		schema map[string]any
		want   string
	}{
		{"plain", map[string]any{"type": "integer"}, "integer"},
		{"union", map[string]any{"type": []any{"integer", "string"}}, "integer|string"},
		{"array of", map[string]any{"type": "array", "items": map[string]any{"type": "string"}}, "array of string"},
		{"array of objects", map[string]any{"type": "array", "items": map[string]any{"properties": map[string]any{}}}, "array of object"},
		{"untyped array", map[string]any{"type": "array"}, "array"},
		{"enum", map[string]any{"enum": []any{"a"}}, "enum"},
		{"nothing", map[string]any{}, "any"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := schemaType(tc.schema); got != tc.want {
				t.Fatalf("schemaType = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNaturalLess(t *testing.T) {
	ordered := []string{"164.308(a)(7)", "164.312(a)(1)", "164.312(b)", "A1.1", "A1.2", "Art. 5(1)(e)", "Art. 6", "Art. 30", "CC6.1", "CC6.8", "CC6.10", "CC7.1"}
	for i := range ordered {
		for j := range ordered {
			if got, want := naturalLess(ordered[i], ordered[j]), i < j; got != want {
				t.Errorf("naturalLess(%q, %q) = %v, want %v", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// TestListCommand runs the command on the embedded library: every compiled policy is listed with its METADATA.
func TestListCommand(t *testing.T) {
	engine, err := compileLibrary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "list", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []catalogueEntry
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(engine.Policies()) {
		t.Fatalf("listed %d policies, the library has %d", len(got), len(engine.Policies()))
	}
	for i, p := range engine.Policies() {
		e := got[i]
		if e.Name != p.Name || e.Severity != p.Severity || e.DefaultMode != p.DefaultMode || e.Title != p.Title || len(e.Parameters) != len(p.Parameters) {
			t.Errorf("entry %d = %+v, want the METADATA of %s", i, e, p.Name)
		}
		for _, param := range e.Parameters {
			if param.Type == "" || param.Schema == nil {
				t.Errorf("%s.%s: no type or schema", e.Name, param.Name)
			}
		}
	}
	text, _, code := attest(t, "", "policy", "list")
	if code != 0 {
		t.Fatal("text list failed")
	}
	for _, p := range engine.Policies() {
		if !strings.Contains(text, p.Name+" ") {
			t.Errorf("text list lacks %s", p.Name)
		}
	}
}

// TestListConfiguredPolicies: with a configuration, the list holds its Cedar sets and custom policies beside the
// library, each with its engine.
func TestListConfiguredPolicies(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.cedar"), []byte(`@id("no-alice") @message("not alice")
forbid (principal == k8s::User::"alice", action, resource);
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfg, []byte("cedar:\n  directories: ["+dir+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "list", "--config", cfg, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []catalogueEntry
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	engines := map[string]string{}
	for _, e := range got {
		engines[e.Name] = e.Engine
	}
	if engines["people"] != "cedar" || engines["no-privileged"] != "opa" {
		t.Errorf("engines %v: want the Cedar set people (cedar) beside the library (opa)", engines)
	}
	text, _, _ := attest(t, "", "policy", "list", "--config", cfg)
	if !strings.Contains(text, "ENGINE") || !strings.Contains(text, "people ") {
		t.Errorf("text list:\n%s", text)
	}
}

func TestListFramework(t *testing.T) {
	engine, err := compileLibrary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "list", "--framework", "SOC2", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r frameworkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// Every (control, policy) pair of the METADATA appears once, and nothing else.
	want := map[string]bool{}
	for _, p := range engine.Policies() {
		for _, c := range p.Compliance["soc2"] {
			want[c+" "+p.Name] = true
		}
	}
	got := map[string]bool{}
	for _, c := range r.Controls {
		for _, p := range c.Policies {
			got[c.Control+" "+p.Name] = true
		}
	}
	if r.Framework != "soc2" || len(want) == 0 || len(got) != len(want) {
		t.Fatalf("framework %q: got %v, want %v", r.Framework, got, want)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing %s", k)
		}
	}
}

// TestListFrameworkWithConfig: the config's compliance section adds controls (with their description) to the
// METADATA mapping, and a framework it disables lists nothing.
func TestListFrameworkWithConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	cfg := "compliance:\n" +
		"  soc2:\n    controls:\n    - {control: CC9.9, policy: resource-limits, description: capacity planning}\n" +
		"  hipaa:\n    enabled: false\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := attest(t, "", "policy", "list", "--framework", "soc2", "--config", path, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r frameworkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range r.Controls {
		if c.Control == "CC9.9" {
			found = len(c.Policies) == 1 && c.Policies[0].Name == "resource-limits" && c.Description == "capacity planning"
		}
	}
	if !found || len(r.Controls) < 5 {
		t.Fatalf("controls %+v", r.Controls)
	}
	out, _, code = attest(t, "", "policy", "list", "--framework", "hipaa", "--config", path)
	if code != 0 || out != "hipaa: no controls (the configuration disables the framework)\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestListErrorsAndOutput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown framework", []string{"--framework", "pci"}, 2, `no policy maps framework "pci"; the catalogue maps gdpr, hipaa, soc2`},
		{"bad format", []string{"--format", "yaml"}, 2, "--format must be text or json"},
		{"unwritable output", []string{"--output", filepath.Join(dir, "no", "such", "dir", "x")}, 2, "--output"},
		{"stray argument", []string{"extra"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := attest(t, "", append([]string{"policy", "list"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to contain %q", code, tc.code, errOut, tc.stderr)
			}
		})
	}
	t.Run("output file", func(t *testing.T) {
		path := filepath.Join(dir, "catalogue.json")
		out, _, code := attest(t, "", "policy", "list", "--format", "json", "--output", path)
		if code != 0 || out != "" {
			t.Fatalf("exit %d, stdout %q", code, out)
		}
		data, err := os.ReadFile(path)
		if err != nil || !json.Valid(data) {
			t.Fatalf("output file: %v, %q", err, data)
		}
	})
}
