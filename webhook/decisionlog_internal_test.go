package webhook

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestPolicyLogsJSON: the hand-written list decodes to what encoding/json writes for it, whatever its strings hold.
func TestPolicyLogsJSON(t *testing.T) {
	tests := []struct {
		name string
		logs policyLogs
	}{
		{"empty", policyLogs{}},
		{"passed", policyLogs{{Policy: "no-privileged", Mode: "enforce", Result: "passed", Micros: 12, Digest: "sha256:ab"}}},
		{"messages and an error", policyLogs{
			{Policy: "a", Mode: "audit", Result: "failed", Messages: []string{`spec.containers[0] "app" is <privileged> & root`, "line\nbreak\ttab"}},
			{Policy: "b", Mode: "enforce", Result: "error", Error: "evaluate: \x00 control \u2028 separator", Micros: -1},
		}},
		{"unicode and invalid UTF-8", policyLogs{{Policy: "ünïcode-✓", Mode: "warn", Result: "passed", Messages: []string{"bad \xff byte"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.logs.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal([]policyLog(tt.logs))
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got %s\nwant %s", got, want)
			}
		})
	}
}
