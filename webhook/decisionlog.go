package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/continuums/attest/admission"
)

// policyLog is one policy's line item in the decision log.
type policyLog struct {
	Policy   string   `json:"policy"`
	Mode     string   `json:"mode"`
	Result   string   `json:"result"`
	Messages []string `json:"messages,omitempty"`
	Error    string   `json:"error,omitempty"`
	Micros   int64    `json:"duration_us"`
	// Digest identifies the policy's source, so a replay knows which version decided.
	Digest string `json:"digest,omitempty"`
}

// policyLogs is the decision log's per-policy list, written by hand rather than by reflection (encoding/json):
// it is the largest attribute of the line written for every admission.
type policyLogs []policyLog

// MarshalJSON writes what encoding/json writes for []policyLog (strings quoted as JSON requires; invalid UTF-8
// replaced, as encoding/json does).
func (ps policyLogs) MarshalJSON() ([]byte, error) {
	return ps.appendJSON(make([]byte, 0, 2+160*len(ps))), nil
}

// appendJSON appends what MarshalJSON writes to b.
func (ps policyLogs) appendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMember(b, `{"policy":`, p.Policy)
		b = appendMember(b, `,"mode":`, p.Mode)
		b = appendMember(b, `,"result":`, p.Result)
		if len(p.Messages) > 0 {
			b = append(b, `,"messages":[`...)
			for j, m := range p.Messages {
				if j > 0 {
					b = append(b, ',')
				}
				b, _ = jsontext.AppendQuote(b, m)
			}
			b = append(b, ']')
		}
		if p.Error != "" {
			b = appendMember(b, `,"error":`, p.Error)
		}
		b = strconv.AppendInt(append(b, `,"duration_us":`...), p.Micros, 10)
		if p.Digest != "" {
			b = appendMember(b, `,"digest":`, p.Digest)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendMember appends name (with its punctuation) and s quoted.
func appendMember(b []byte, name, s string) []byte {
	b, _ = jsontext.AppendQuote(append(b, name...), s) // invalid UTF-8 is replaced; the error only says so
	return b
}

// logLine is the reusable memory of one decision-log line: its bytes and its per-policy list.
type logLine struct {
	b     []byte
	items policyLogs
}

// lines reuse the memory of decision-log lines.
var lines = sync.Pool{New: func() any { return &logLine{b: make([]byte, 0, 2048)} }}

// logDecision writes to DecisionLog the one JSON line per admission: who, what, the verdict and each policy's
// result; with inputs on (or when a policy's sample rule asked for it), the redacted input too, for `attest policy
// replay`. The line is written by hand, time and level as log/slog's JSON handler writes them, rather than through
// Log (its reflection and re-validation on every line); Log's level still decides whether it is written.
func (h *Handler) logDecision(in admission.Input, d admission.Decision, decision string) {
	if h.o.DecisionLog == nil || !h.o.Log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	var byPolicy map[string][]string // nil (read as empty) when nothing was found
	if len(d.Violations) > 0 {
		byPolicy = make(map[string][]string, len(d.Violations))
		for _, v := range d.Violations {
			byPolicy[v.Policy] = append(byPolicy[v.Policy], v.String())
		}
	}
	line := lines.Get().(*logLine)
	items := line.items[:0]
	for _, r := range d.Results {
		item := policyLog{Policy: r.Policy, Mode: string(r.Mode), Result: string(r.Outcome), Messages: byPolicy[r.Policy], Micros: r.Duration.Microseconds(), Digest: r.Digest}
		if r.Err != nil {
			item.Error = r.Err.Error()
		}
		items = append(items, item)
	}
	b := append(line.b[:0], `{"time":"`...)
	b = time.Now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"admission"`...)
	req := in.Request
	b = appendMember(b, `,"uid":`, req.UID)
	b = appendMember(b, `,"user":`, req.Username)
	b = appendMember(b, `,"operation":`, req.Operation)
	b = appendMember(b, `,"kind":`, req.Kind)
	b = appendMember(b, `,"subresource":`, req.SubResource)
	b = appendMember(b, `,"namespace":`, req.Namespace)
	b = appendMember(b, `,"name":`, req.Name)
	b = strconv.AppendBool(append(b, `,"dry_run":`...), req.DryRun)
	b = appendMember(b, `,"decision":`, decision)
	b = strconv.AppendInt(append(b, `,"code":`...), int64(d.Code), 10)
	b = appendMember(b, `,"message":`, d.Message)
	b = items.appendJSON(append(b, `,"policies":`...))
	b = strconv.AppendFloat(append(b, `,"duration_ms":`...), float64(d.Duration.Microseconds())/1000, 'f', -1, 64)
	if d.NotEvaluated != "" {
		b = appendMember(b, `,"not_evaluated":`, d.NotEvaluated)
	}
	if h.o.LogInputs || len(d.Sampled) > 0 { // rare: as encoding/json writes them
		b = appendJSON(b, `,"groups":`, req.Groups)
		b = appendJSON(b, `,"input":`, recordInput(in, h.o.MaxLoggedInput))
		if len(d.Sampled) > 0 {
			b = appendJSON(b, `,"sampled":`, d.Sampled)
		}
	}
	b = append(b, "}\n"...)
	if _, err := h.o.DecisionLog.Write(b); err != nil {
		h.o.Log.Warn("decision log write failed", "uid", req.UID, "err", err)
	}
	clear(items) // no messages kept alive by the pool
	line.b, line.items = b, items[:0]
	if cap(b) <= 64<<10 { // a line with a large input is not kept
		lines.Put(line)
	}
}

// appendJSON appends name and v as encoding/json writes it (an error written as the value's place: {"error": ...},
// so the line stays JSON).
func appendJSON(b []byte, name string, v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		return append(appendMember(append(b, name...), `{"error":`, err.Error()), '}')
	}
	return append(append(b, name...), raw...)
}
