package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/policies"
)

// ReportGroup is the API group of the reports: wgpolicyk8s.io/v1alpha2, the PolicyReport that Kyverno writes and
// Policy Reporter (its UI, Prometheus metrics and notifications) reads today; openreports.io is its renamed successor,
// which Policy Reporter 3 reads beside it, so wgpolicyk8s.io reaches every reader installed now.
const (
	ReportGroup      = "wgpolicyk8s.io"
	ReportVersion    = "v1alpha2"
	ReportAPIVersion = ReportGroup + "/" + ReportVersion
	// ResultSource is the results' source, as Policy Reporter filters by it.
	ResultSource = "attest"
	// LabelManagedBy marks the reports ATTEST writes; it removes no report without it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationAuditedBy names the replica (Lease holder) that wrote a report.
	AnnotationAuditedBy = "policy.attest.continuu.ms/audited-by"
	// MaxReportBytes keeps every report well under etcd's 1.5 MiB request limit (its default --max-request-bytes):
	// a namespace whose results need more is split into several reports.
	MaxReportBytes = 1 << 20
)

// Results of a PolicyReport.
const (
	ResultPass  = "pass"
	ResultFail  = "fail"
	ResultWarn  = "warn"
	ResultError = "error"
	ResultSkip  = "skip"
)

// Result is one policy's verdict on one object, as wgpolicyk8s.io/v1alpha2 defines it.
type Result struct {
	Source    string            `json:"source"`
	Policy    string            `json:"policy"`
	Rule      string            `json:"rule,omitempty"`
	Category  string            `json:"category,omitempty"`
	Severity  string            `json:"severity,omitempty"`
	Timestamp Timestamp         `json:"timestamp"`
	Result    string            `json:"result"`
	Scored    bool              `json:"scored"`
	Resources []Ref             `json:"resources"`
	Message   string            `json:"message,omitempty"`
	Props     map[string]string `json:"properties,omitempty"`
}

// Timestamp is the results' time as the report schema has it (protobuf Timestamp).
type Timestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

// Summary counts a report's results.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

func (s *Summary) add(result string) {
	switch result {
	case ResultPass:
		s.Pass++
	case ResultFail:
		s.Fail++
	case ResultWarn:
		s.Warn++
	case ResultError:
		s.Error++
	case ResultSkip:
		s.Skip++
	}
}

// Report is one PolicyReport (Namespace set) or ClusterPolicyReport.
type Report struct {
	Namespace string
	Name      string
	// Chunk is this report's index among its namespace's reports (0 for the first).
	Chunk   int
	Summary Summary
	Results []Result
}

// Object is the report as the API server takes it.
func (r *Report) Object(auditedBy string) map[string]any {
	kind := "PolicyReport"
	if r.Namespace == "" {
		kind = "ClusterPolicyReport"
	}
	md := map[string]any{
		"name":        r.Name,
		"labels":      map[string]any{LabelManagedBy: ResultSource, LabelChunk: strconv.Itoa(r.Chunk)},
		"annotations": map[string]any{AnnotationAuditedBy: auditedBy},
	}
	if r.Namespace != "" {
		md["namespace"] = r.Namespace
	}
	results := make([]any, len(r.Results))
	for i := range r.Results {
		results[i] = toMap(r.Results[i])
	}
	return map[string]any{
		"apiVersion": ReportAPIVersion, "kind": kind, "metadata": md,
		"summary": toMap(r.Summary), "results": results,
	}
}

// LabelChunk numbers a namespace's reports, so that those beyond this run's count are removed.
const LabelChunk = "policy.attest.continuu.ms/report-chunk"

// ReportName is the name of a namespace's chunk-th report: attest, then attest-2, attest-3, ...
func ReportName(chunk int) string {
	if chunk == 0 {
		return ResultSource
	}
	return ResultSource + "-" + strconv.Itoa(chunk+1)
}

func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("audit: marshal %T: %v", v, err)) // plain structs of strings and numbers
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("audit: unmarshal %T: %v", v, err))
	}
	return m
}

// chunker fills a namespace's reports in order, handing each to flush when the next result would take it past
// max bytes, so a namespace of any size holds at most one report in memory. Passes are grouped: one pass result
// per policy and report lists every object that passed it (the schema's resources is a list, and Policy Reporter
// shows one row per resource), which makes a report of a mostly compliant namespace a third of the size (and a
// third of the API server's work to store it) without losing a verdict.
type chunker struct {
	namespace string
	max       int
	cur       Report
	size      int
	chunks    int
	flush     func(*Report) error
	// passes is the index in cur.Results of each policy's pass result.
	passes map[string]int
}

// reportOverhead is room for a report's metadata and summary beside its results.
const reportOverhead = 1024

func newChunker(namespace string, max int, flush func(*Report) error) *chunker {
	c := &chunker{namespace: namespace, max: max, flush: flush}
	c.reset()
	return c
}

func (c *chunker) reset() {
	c.cur = Report{Namespace: c.namespace, Name: ReportName(c.chunks), Chunk: c.chunks}
	c.size = reportOverhead
	c.passes = map[string]int{}
}

func (c *chunker) add(r Result) error {
	if r.Result == ResultPass && len(r.Resources) == 1 {
		if i, ok := c.passes[r.Policy]; ok {
			b, err := json.Marshal(r.Resources[0])
			if err != nil {
				return err
			}
			if c.size+len(b)+1 <= c.max {
				c.cur.Results[i].Resources = append(c.cur.Results[i].Resources, r.Resources[0])
				c.cur.Summary.add(ResultPass)
				c.size += len(b) + 1
				return nil
			}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(c.cur.Results) > 0 && c.size+len(b)+1 > c.max {
		if err := c.done(); err != nil {
			return err
		}
	}
	if r.Result == ResultPass {
		r.Message = ""
		c.passes[r.Policy] = len(c.cur.Results)
	}
	c.cur.Results = append(c.cur.Results, r)
	c.cur.Summary.add(r.Result)
	c.size += len(b) + 1
	return nil
}

// done flushes the current report and starts the next.
func (c *chunker) done() error {
	if err := c.flush(&c.cur); err != nil {
		return err
	}
	c.chunks++
	c.reset()
	return nil
}

// finish flushes the last report, if it holds anything, and returns how many reports the namespace has.
func (c *chunker) finish() (int, error) {
	if len(c.cur.Results) > 0 {
		if err := c.done(); err != nil {
			return c.chunks, err
		}
	}
	return c.chunks, nil
}

// maxMessageLines caps the violations listed in one result's message.
const maxMessageLines = 10

// results turns one object's decision into one result per policy that ran on it: pass, fail (an enforced
// violation: admission would deny it now), warn (audited, or enforced only from enforceAfter), skip (every
// violation waived by an exemption, named with its approver and expiry) or error (the policy could not run).
func results(obj Ref, d *admission.Decision, meta func(policy string) *policies.Metadata, now time.Time) []Result {
	ts := Timestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())}
	base := func(policy string) Result {
		r := Result{Source: ResultSource, Policy: policy, Rule: policy, Timestamp: ts, Scored: true, Resources: []Ref{obj}}
		if m := meta(policy); m != nil {
			r.Severity = reportSeverity(string(m.Severity))
			r.Category = category(m.Compliance)
		}
		return r
	}
	if d.Code == 400 || d.Code == 500 {
		r := base("attest")
		r.Result, r.Message, r.Severity = ResultError, d.Message, "high"
		return []Result{r}
	}
	byPolicy := map[string][]admission.Violation{}
	for _, v := range d.Violations {
		byPolicy[v.Policy] = append(byPolicy[v.Policy], v)
	}
	out := make([]Result, 0, len(d.Results)+1)
	seen := map[string]bool{}
	for _, pr := range d.Results {
		seen[pr.Policy] = true
		r := base(pr.Policy)
		r.Props = map[string]string{"mode": string(pr.Mode)}
		vs := byPolicy[pr.Policy]
		switch pr.Outcome {
		case admission.OutcomePassed:
			r.Result = ResultPass
		case admission.OutcomeError:
			r.Result = ResultError
		case admission.OutcomeExempted:
			r.Result = ResultSkip
			if e := vs[0].Exemption; e != nil {
				r.Props["exemption"] = e.Source + " " + e.Name
				r.Props["approver"] = e.Approver
				r.Props["expires"] = e.Expires.UTC().Format(time.RFC3339)
			}
		default:
			r.Result = ResultWarn
			for _, v := range vs {
				if v.Denied {
					r.Result = ResultFail
				}
				if !v.EnforceFrom.IsZero() {
					r.Props["enforceAfter"] = v.EnforceFrom.UTC().Format(time.RFC3339)
				}
			}
		}
		if len(vs) > 0 {
			r.Message = message(vs)
			if s := highest(vs); s != "" {
				r.Severity = reportSeverity(s)
			}
		}
		out = append(out, r)
	}
	for _, v := range d.Violations { // findings of no policy run: an exemption the governance refuses
		if !seen[v.Policy] {
			seen[v.Policy] = true
			r := base(v.Policy)
			r.Result, r.Message, r.Severity = ResultFail, message(byPolicy[v.Policy]), reportSeverity(string(v.Severity))
			out = append(out, r)
		}
	}
	return out
}

// message lists the violations in the webhook's one format, each with its path, capped.
func message(vs []admission.Violation) string {
	lines := make([]string, 0, min(len(vs), maxMessageLines)+1)
	for i, v := range vs {
		if i == maxMessageLines {
			lines = append(lines, fmt.Sprintf("and %d more", len(vs)-maxMessageLines))
			break
		}
		lines = append(lines, v.String())
	}
	return strings.Join(lines, "\n")
}

var severityRank = map[string]int{"critical": 4, "high": 3, "medium": 2, "low": 1}

func highest(vs []admission.Violation) string {
	best := ""
	for _, v := range vs {
		if severityRank[string(v.Severity)] > severityRank[best] {
			best = string(v.Severity)
		}
	}
	return best
}

// reportSeverity maps ours onto the schema's enum (critical, high, medium, low, info).
func reportSeverity(s string) string {
	if _, ok := severityRank[s]; ok {
		return s
	}
	return "info"
}

// category is the policy's compliance controls: "gdpr Art. 30; soc2 CC6.1, CC7.2", frameworks in name order.
func category(c map[string][]string) string {
	if len(c) == 0 {
		return ""
	}
	frameworks := make([]string, 0, len(c))
	for f := range c {
		frameworks = append(frameworks, f)
	}
	sort.Strings(frameworks)
	parts := make([]string, 0, len(frameworks))
	for _, f := range frameworks {
		ids := slices.Clone(c[f])
		sort.Strings(ids)
		parts = append(parts, f+" "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, "; ")
}
