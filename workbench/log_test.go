package workbench_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/continuums/attest/workbench"
)

func TestReadLog(t *testing.T) {
	line := func(time, name, decision, input string) string {
		return `{"time":"` + time + `","level":"INFO","msg":"admission","uid":"u-` + name + `","operation":"CREATE","kind":"Pod","namespace":"shop","name":"` + name +
			`","decision":"` + decision + `","message":"m","policies":[{"policy":"no-privileged","mode":"enforce","result":"failed","messages":["[no-privileged] x"]}]` + input + "}\n"
	}
	in := func(name string) string {
		return `,"input":{"request":{"Operation":"CREATE","Kind":"Pod","Namespace":"shop","Name":"` + name + `"},"object":{"kind":"Pod","metadata":{"name":"` + name + `"}}}`
	}
	cases := []struct {
		name    string
		log     string
		names   []string
		skipped int
		err     string
	}{
		{name: "newest first", log: line("2026-12-01T10:00:00Z", "a", "denied", in("a")) + line("2026-12-01T12:00:00Z", "b", "allowed", in("b")) + line("2026-12-01T11:00:00Z", "c", "warned", in("c")),
			names: []string{"b", "c", "a"}},
		{name: "the same time: the later line first", log: line("2026-12-01T10:00:00Z", "a", "denied", in("a")) + line("2026-12-01T10:00:00Z", "b", "allowed", in("b")), names: []string{"b", "a"}},
		{name: "without input, truncated, or another message", log: line("2026-12-01T10:00:00Z", "a", "denied", "") +
			line("2026-12-01T10:00:00Z", "t", "denied", `,"input":{"request":{"Operation":"CREATE"},"truncated_bytes":70000}`) +
			`{"time":"2026-12-01T10:00:00Z","level":"INFO","msg":"configuration loaded"}` + "\n\n" + line("2026-12-01T10:00:00Z", "b", "allowed", in("b")),
			names: []string{"b"}, skipped: 2},
		{name: "not JSON, with its line", log: line("2026-12-01T10:00:00Z", "a", "denied", in("a")) + "E1204 klog text\n", err: "decisions.jsonl:2: not a decision log line"},
		{name: "empty", log: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, skipped, err := workbench.ReadLog(strings.NewReader(c.log), "decisions.jsonl")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, r := range recs {
				names = append(names, r.Name)
				if r.ID != i || r.Input.Object == nil || r.Policies["no-privileged"][0] != "[no-privileged] x" {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
			if strings.Join(names, ",") != strings.Join(c.names, ",") || skipped != c.skipped {
				t.Fatalf("records %v skipped %d, want %v %d", names, skipped, c.names, c.skipped)
			}
		})
	}
}

// FuzzReadLog: a decision log is read from a file anyone may have written; no input makes ReadLog panic, and
// every record it returns carries an object (or is a DELETE).
func FuzzReadLog(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-01T10:00:00Z","msg":"admission","decision":"denied","input":{"request":{"Operation":"CREATE","Kind":"Pod"},"object":{"kind":"Pod"}}}` + "\n"))
	f.Add([]byte(`{"msg":"admission","input":{"request":{"Operation":"DELETE"}}}` + "\n" + `{"msg":"admission","input":null}`))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _, err := workbench.ReadLog(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Input.Object == nil && r.Input.Request.Operation != "DELETE" {
				t.Fatalf("a record without an object: %+v", r)
			}
		}
	})
}
