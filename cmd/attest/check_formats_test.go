package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// formatArgs check the fixtures of every kind: denials, warnings, exemptions by annotation and by
// PolicyException, and an exemption refused by the governance.
var formatArgs = []string{
	"policy", "check", "--now", "2026-11-25T12:00:00Z",
	"-f", "testdata/exemptions/annotations", "-f", "testdata/exemptions/cluster",
	"--config", "testdata/exemptions/policies.yaml", "--as", "alice", "--as-group", "break-glass",
}

// mixedArgs are the golden files' fixtures.
var mixedArgs = []string{"policy", "check", "-f", "testdata/mixed", "-f", "testdata/json", "--config", "testdata/policies.yaml", "--now", "2026-11-25T12:00:00Z"}

// compileSARIFSchema compiles the vendored OASIS SARIF 2.1.0 schema, asserting formats (uri, uri-reference, date-time).
func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/schemas/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validateSARIF(sch *jsonschema.Schema, out string) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestCheckSARIFValidatesAgainstSchema(t *testing.T) {
	sch := compileSARIFSchema(t)
	for name, args := range map[string][]string{"mixed": mixedArgs, "exemptions": formatArgs} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(args, "--format", "sarif")...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, errOut)
			}
			if err := validateSARIF(sch, out); err != nil {
				t.Fatalf("SARIF output does not validate against the SARIF 2.1.0 schema: %v", err)
			}
		})
	}
	t.Run("the validator rejects what the schema forbids", func(t *testing.T) {
		out, _, _ := attest(t, "", append(mixedArgs, "--format", "sarif")...)
		bad := strings.Replace(out, `"level": "error"`, `"level": "fatal"`, 1)
		if bad == out || validateSARIF(sch, bad) == nil {
			t.Fatal("a result with level fatal validated")
		}
	})
}

// TestCheckSARIFContent checks what code scanning shows: one rule per policy that ran, with help from the
// remediation; each violation a result at its file and line, error when denied, warning otherwise; exempted
// ones suppressed with the exemption named.
func TestCheckSARIFContent(t *testing.T) {
	jsonOut, _, _ := attest(t, "", append(formatArgs, "--format", "json")...)
	var report checkReport
	if err := json.Unmarshal([]byte(jsonOut), &report); err != nil {
		t.Fatal(err)
	}
	out, _, _ := attest(t, "", append(formatArgs, "--format", "sarif")...)
	var log sarifLog
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	ruleIDs := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		ruleIDs[r.ID] = i
	}
	for _, want := range []string{"no-privileged", "trusted-registries", "exemptions"} {
		if _, ok := ruleIDs[want]; !ok {
			t.Errorf("no rule %s among %v", want, ruleIDs)
		}
	}
	if _, ok := ruleIDs["resource-limits"]; ok {
		t.Error("a policy that is off has a rule")
	}
	np := run.Tool.Driver.Rules[ruleIDs["no-privileged"]]
	if np.Help == nil || !strings.Contains(np.Help.Text, "remove securityContext.privileged") || np.DefaultConfiguration.Level != "error" {
		t.Errorf("no-privileged rule: %+v", np)
	}
	if len(run.Results) != len(report.Results) {
		t.Fatalf("%d SARIF results for %d violations", len(run.Results), len(report.Results))
	}
	for i, res := range run.Results {
		want := report.Results[i]
		level := "warning"
		if want.Denied {
			level = "error"
		}
		loc := res.Locations[0].PhysicalLocation
		if res.RuleID != want.Policy || res.Level != level || res.Message.Text != want.Message || res.RuleIndex != ruleIDs[want.Policy] ||
			loc == nil || loc.ArtifactLocation.URI != want.File || loc.Region.StartLine != want.Line {
			t.Errorf("result %d = %+v, want %+v", i, res, want)
		}
		if (want.Exemption != nil) != (len(res.Suppressions) == 1) {
			t.Errorf("result %d: exemption %v, suppressions %v", i, want.Exemption, res.Suppressions)
		}
		if want.Exemption != nil && !strings.Contains(res.Suppressions[0].Justification, want.Exemption.Name) {
			t.Errorf("suppression does not name the exemption: %+v", res.Suppressions[0])
		}
	}
}

// normalizeJUnit blanks what changes from run to run: evaluation times and the host name.
func normalizeJUnit(s string) string {
	s = regexp.MustCompile(` time="[0-9.]+"`).ReplaceAllString(s, ` time="0.000000"`)
	return regexp.MustCompile(` hostname="[^"]*"`).ReplaceAllString(s, ` hostname="HOST"`)
}

func TestCheckFormatsGolden(t *testing.T) {
	for _, format := range []string{"sarif", "junit"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := attest(t, "", append(mixedArgs, "--format", format)...)
			if code != 1 {
				t.Fatalf("exit %d; stderr %s", code, errOut)
			}
			golden(t, "check.golden."+format, normalizeJUnit(out))
		})
	}
	t.Run("exemptions text", func(t *testing.T) {
		out, errOut, code := attest(t, "", formatArgs...)
		if code != 1 {
			t.Fatalf("exit %d; stderr %s", code, errOut)
		}
		golden(t, "check-exemptions.golden.text", out)
	})
	t.Run("exemptions json", func(t *testing.T) {
		out, _, _ := attest(t, "", append(formatArgs, "--format", "json")...)
		golden(t, "check-exemptions.golden.json", out)
	})
	t.Run("exemptions junit", func(t *testing.T) {
		out, _, _ := attest(t, "", append(formatArgs, "--format", "junit")...)
		golden(t, "check-exemptions.golden.junit", normalizeJUnit(out))
	})
}

// The JUnit document as the Ant schema and Jenkins' junit-10.xsd require it, checked with encoding/xml so the
// check runs without cgo; junit_xsd_test.go validates against the XSDs themselves with libxml2.
type antSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Attrs   []xml.Attr `xml:",any,attr"`
	Suites  []antSuite `xml:"testsuite"`
}

type antSuite struct {
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []antChild `xml:",any"`
}

type antChild struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []antChild `xml:",any"`
	Text     string     `xml:",chardata"`
}

func attrs(list []xml.Attr) map[string]string {
	m := map[string]string{}
	for _, a := range list {
		m[a.Name.Local] = a.Value
	}
	return m
}

// checkJUnitStructure applies the rules of both schemas that encoding/xml can see: no attributes on testsuites
// (Ant), required attributes and their types, the order of a suite's children (properties, testcase*,
// system-out, system-err), at most one failure or error per testcase, counts that add up.
func checkJUnitStructure(doc []byte) error {
	var s antSuites
	if err := xml.Unmarshal(doc, &s); err != nil {
		return err
	}
	isInt := func(v string) bool { _, err := strconv.Atoi(v); return err == nil }
	isDecimal := regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`).MatchString
	timestamp := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`).MatchString
	if len(s.Attrs) > 0 {
		return fmt.Errorf("testsuites has attributes %v; the Ant schema allows none", s.Attrs)
	}
	for i, suite := range s.Suites {
		a := attrs(suite.Attrs)
		for _, k := range []string{"name", "package", "timestamp", "hostname"} {
			if strings.TrimSpace(a[k]) == "" {
				return fmt.Errorf("testsuite %d: attribute %s missing or empty", i, k)
			}
		}
		for _, k := range []string{"id", "tests", "failures", "errors"} {
			if !isInt(a[k]) {
				return fmt.Errorf("testsuite %d: attribute %s=%q is not an integer", i, k, a[k])
			}
		}
		if a["id"] != strconv.Itoa(i) || !isDecimal(a["time"]) || !timestamp(a["timestamp"]) {
			return fmt.Errorf("testsuite %d: id %q, time %q, timestamp %q", i, a["id"], a["time"], a["timestamp"])
		}
		var order []string
		counts := map[string]int{}
		for _, c := range suite.Children {
			name := c.XMLName.Local
			if len(order) == 0 || order[len(order)-1] != name {
				order = append(order, name)
			}
			if name != "testcase" {
				continue
			}
			counts["tests"]++
			ca := attrs(c.Attrs)
			if strings.TrimSpace(ca["name"]) == "" || strings.TrimSpace(ca["classname"]) == "" || !isDecimal(ca["time"]) {
				return fmt.Errorf("testsuite %d: testcase %v lacks name, classname or a decimal time", i, ca)
			}
			if len(c.Children) > 1 {
				return fmt.Errorf("testsuite %d: testcase %s has %d children; the Ant schema allows one failure or error", i, ca["name"], len(c.Children))
			}
			for _, p := range c.Children {
				switch p.XMLName.Local {
				case "failure":
					counts["failures"]++
				case "error":
					counts["errors"]++
				default:
					return fmt.Errorf("testcase %s: unexpected <%s>", ca["name"], p.XMLName.Local)
				}
				if attrs(p.Attrs)["type"] == "" {
					return fmt.Errorf("testcase %s: <%s> without type", ca["name"], p.XMLName.Local)
				}
			}
		}
		if got := strings.Join(order, ","); got != "properties,testcase,system-out,system-err" && got != "properties,system-out,system-err" {
			return fmt.Errorf("testsuite %d: children in order %s, want properties, testcase*, system-out, system-err", i, got)
		}
		for _, k := range []string{"tests", "failures", "errors"} {
			if strconv.Itoa(counts[k]) != a[k] {
				return fmt.Errorf("testsuite %d: %s=%s but %d found", i, k, a[k], counts[k])
			}
		}
	}
	return nil
}

func TestCheckJUnitStructure(t *testing.T) {
	for name, args := range map[string][]string{"mixed": mixedArgs, "exemptions": formatArgs} {
		t.Run(name, func(t *testing.T) {
			out, _, code := attest(t, "", append(args, "--format", "junit")...)
			if code != 1 {
				t.Fatalf("exit %d", code)
			}
			if err := checkJUnitStructure([]byte(out)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("one testcase per object and policy, failures for denials", func(t *testing.T) {
		out, _, _ := attest(t, "", append(formatArgs, "--format", "junit")...)
		jsonOut, _, _ := attest(t, "", append(formatArgs, "--format", "json")...)
		var report checkReport
		if err := json.Unmarshal([]byte(jsonOut), &report); err != nil {
			t.Fatal(err)
		}
		var doc junitSuites
		if err := xml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		tests, failures := 0, 0
		for _, s := range doc.Suites {
			tests += s.Tests
			failures += s.Failures
		}
		// two policies ran on each object; too-long also fails the exemption governance
		if tests != 2*report.Objects+1 {
			t.Errorf("%d testcases for %d objects", tests, report.Objects)
		}
		denied := map[string]bool{}
		for _, r := range report.Results {
			if r.Denied {
				denied[r.Kind+" "+r.Namespace+"/"+r.Name+" "+r.Policy] = true
			}
		}
		failed := map[string]bool{}
		for _, s := range doc.Suites {
			for _, c := range s.Cases {
				if c.Failure != nil {
					failed[c.Classname+" "+c.Name] = true
				}
			}
		}
		if fmt.Sprint(denied) != fmt.Sprint(failed) || failures != len(failed) {
			t.Errorf("failures %v, denials %v", failed, denied)
		}
	})
	t.Run("the structural check rejects a testcase without classname", func(t *testing.T) {
		out, _, _ := attest(t, "", append(mixedArgs, "--format", "junit")...)
		bad := strings.Replace(out, ` classname="`, ` class="`, 1)
		if checkJUnitStructure([]byte(bad)) == nil {
			t.Fatal("accepted")
		}
	})
}

func TestCheckOutputFile(t *testing.T) {
	for _, format := range []string{"text", "json", "sarif", "junit"} {
		t.Run(format, func(t *testing.T) {
			path := t.TempDir() + "/report." + format
			stdout, _, code := attest(t, "", append(mixedArgs, "--format", format, "--output", path)...)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			want, _, _ := attest(t, "", append(mixedArgs, "--format", format)...)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if format == "junit" {
				want, got = normalizeJUnit(want), []byte(normalizeJUnit(string(got)))
			}
			if !bytes.Equal(got, []byte(want)) {
				t.Fatalf("file differs from stdout:\n%s", got)
			}
		})
	}
}
