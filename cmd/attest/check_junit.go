package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// JUnit XML as Jenkins, GitLab and the Ant JUnit task read it: one testsuite per file, one testcase per object
// and policy, a failure for each testcase the policy denies. The document is valid against both the Ant JUnit
// schema (which wants properties, system-out and system-err in every suite, one failure per testcase, and
// package and id on aggregated suites) and Jenkins' junit-10.xsd.
//
// The Ant schema allows no attributes on testsuites, so totals are left to the readers, which add up the suites.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  junitText       `xml:"system-out"`
	SystemErr  junitText       `xml:"system-err"`
}

// junitText is element text written as CDATA, so multi-line output stays readable.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

func writeJUnit(w io.Writer, run *checkRun) error {
	host, err := os.Hostname()
	if err != nil || strings.TrimSpace(host) == "" {
		host = "localhost"
	}
	props := []junitProperty{{Name: "attest.requestTime", Value: run.now.UTC().Format(time.RFC3339)}}
	if run.opts.config != "" {
		props = append(props, junitProperty{Name: "attest.config", Value: run.opts.config})
	}
	if run.opts.as != "" || len(run.opts.asGroups) > 0 {
		props = append(props, junitProperty{Name: "attest.user", Value: run.opts.as}, junitProperty{Name: "attest.groups", Value: strings.Join(run.opts.asGroups, ",")})
	}
	var doc junitSuites
	suites := map[string]int{}
	for _, obj := range run.objects {
		i, ok := suites[obj.File]
		if !ok {
			i = len(doc.Suites)
			suites[obj.File] = i
			doc.Suites = append(doc.Suites, junitSuite{
				Name: obj.File, Package: obj.File, ID: i, Timestamp: run.now.UTC().Format("2006-01-02T15:04:05"), Hostname: host,
				Properties: junitProperties{Property: props},
			})
		}
		s := &doc.Suites[i]
		var out strings.Builder
		cases, d := objectCases(run, obj, &out)
		for _, c := range cases {
			s.Tests++
			if c.Failure != nil {
				s.Failures++
			}
			if c.Error != nil {
				s.Errors++
			}
		}
		s.Cases = append(s.Cases, cases...)
		s.SystemOut.Text += out.String()
		s.Time = addSeconds(s.Time, d)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// objectCases are one object's testcases: one per policy that ran (failed when it denies), one for the
// exemption rules when an exemption itself was refused, or a single error when the object could not be read.
// Warnings and exemptions are written to out, for the suite's system-out.
func objectCases(run *checkRun, obj objectRecord, out *strings.Builder) ([]junitCase, time.Duration) {
	class := obj.Kind + " " + obj.Name
	if obj.Namespace != "" {
		class = obj.Kind + " " + obj.Namespace + "/" + obj.Name
	}
	if obj.InputErr != "" {
		return []junitCase{{Name: "read", Classname: class, Time: seconds(0), Error: &junitProblem{
			Message: obj.InputErr, Type: "input", Text: fmt.Sprintf("%s:%d: %s", obj.File, obj.Line, obj.InputErr),
		}}}, 0
	}
	denials := map[string][]string{}
	var order []string
	for _, ri := range obj.Results {
		r := run.report.Results[ri]
		switch {
		case r.Denied:
			if _, seen := denials[r.Policy]; !seen {
				order = append(order, r.Policy)
			}
			denials[r.Policy] = append(denials[r.Policy], r.Message)
		case r.Exemption != nil:
			fmt.Fprintf(out, "%s:%d: EXEMPT %s: %s (exempted by %s %s, approved by %s, expires %s)\n", r.File, r.Line, class, r.Message,
				r.Exemption.Source, r.Exemption.Name, r.Exemption.Approver, r.Exemption.Expires.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(out, "%s:%d: WARN %s: %s\n", r.File, r.Line, class, r.Message)
		}
	}
	var cases []junitCase
	var total time.Duration
	ran := map[string]bool{}
	for _, p := range obj.Policies {
		ran[p.Policy] = true
		total += p.Duration
		cases = append(cases, junitCase{Name: p.Policy, Classname: class, Time: seconds(p.Duration), Failure: failureOf(p.Policy, denials[p.Policy], obj)})
	}
	for _, p := range order {
		if !ran[p] { // denials that no policy run carries: exemptions refused by the governance
			cases = append(cases, junitCase{Name: p, Classname: class, Time: seconds(0), Failure: failureOf(p, denials[p], obj)})
		}
	}
	return cases, total
}

func failureOf(policy string, lines []string, obj objectRecord) *junitProblem {
	if len(lines) == 0 {
		return nil
	}
	text := make([]string, len(lines))
	for i, l := range lines {
		text[i] = fmt.Sprintf("%s:%d: %s", obj.File, obj.Line, l)
	}
	return &junitProblem{Message: lines[0], Type: policy, Text: strings.Join(text, "\n")}
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 6, 64) }

func addSeconds(s string, d time.Duration) string {
	prev, _ := strconv.ParseFloat(s, 64) // our own format, or empty for 0
	return strconv.FormatFloat(prev+d.Seconds(), 'f', 6, 64)
}
