package workbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/continuums/attest/admission"
)

// Record is one recorded admission the workbench can replay: the decision log line of `attest serve
// --log-inputs` (or of a policy's sample rule) with its input, or an object of a manifest (playground).
type Record struct {
	ID        int       `json:"id"`
	Time      time.Time `json:"time,omitzero"`
	Source    string    `json:"source"` // file:line
	Operation string    `json:"operation"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name,omitempty"`
	User      string    `json:"user,omitempty"`
	// Decision and Message are what was decided when the input was recorded ("" for a manifest object); Policies
	// are the recorded messages by policy.
	Decision string              `json:"decision,omitempty"`
	Message  string              `json:"message,omitempty"`
	Policies map[string][]string `json:"policies,omitempty"`
	Input    RecordedInput       `json:"input"`
}

// RecordedInput is the request as the decision log holds it (webhook.LoggedInput's JSON form).
type RecordedInput struct {
	Request   admission.Request `json:"request"`
	Object    map[string]any    `json:"object,omitempty"`
	OldObject map[string]any    `json:"old_object,omitempty"`
}

// Admission is the pipeline's input for the recorded request.
func (r RecordedInput) Admission() admission.Input {
	return admission.Input{Request: r.Request, Object: r.Object, OldObject: r.OldObject}
}

// logLine is the part of a decision log line the workbench reads.
type logLine struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	Decision string    `json:"decision"`
	Message  string    `json:"message"`
	Policies []struct {
		Policy   string   `json:"policy"`
		Messages []string `json:"messages"`
	} `json:"policies"`
	Input *struct {
		RecordedInput
		Truncated int `json:"truncated_bytes"`
	} `json:"input"`
}

// maxLogLine bounds one decision log line (a recorded input is capped at 64 KiB by the webhook; the rest of the
// line is small).
const maxLogLine = 16 << 20

// ReadLog reads a decision log (JSON lines) and returns the admissions recorded with their input, newest first.
// Lines of other messages, and admissions recorded without input or with a truncated one, are skipped and
// counted; a line that is not JSON is an error naming name:line.
func ReadLog(r io.Reader, name string) (records []Record, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: not a decision log line: %w", name, line, err)
		}
		if l.Msg != "admission" {
			continue
		}
		if l.Input == nil || l.Input.Truncated > 0 || (l.Input.Object == nil && l.Input.Request.Operation != "DELETE") {
			skipped++
			continue
		}
		req := l.Input.Request
		rec := Record{
			Time: l.Time, Source: fmt.Sprintf("%s:%d", name, line), Operation: req.Operation, Kind: req.Kind,
			Namespace: req.Namespace, Name: req.Name, User: req.Username, Decision: l.Decision, Message: l.Message,
			Policies: map[string][]string{}, Input: l.Input.RecordedInput,
		}
		for _, p := range l.Policies {
			rec.Policies[p.Policy] = p.Messages
		}
		records = append(records, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	// Newest first; lines of the same time keep their order in the file, later lines first.
	for i, j := 0, len(records)-1; i < j; i, j = i+1, j-1 {
		records[i], records[j] = records[j], records[i]
	}
	sort.SliceStable(records, func(i, j int) bool { return records[i].Time.After(records[j].Time) })
	for i := range records {
		records[i].ID = i
	}
	return records, skipped, nil
}
