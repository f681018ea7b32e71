package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProfileRenderingGolden(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	samples := map[string][]time.Duration{
		"resource-limits":    {ms(0.2), ms(0.3), ms(4.5)},
		"no-privileged":      {ms(0.01), ms(0.012), ms(0.011)},
		"trusted-registries": {ms(0.5), ms(0.6), ms(0.4)},
	}
	r := profileReport{Objects: 3, Repeat: 1, Policies: profiles(samples)}
	for _, p := range r.Policies {
		r.Evaluations += p.Evaluations
		r.TotalNs += p.TotalNs
	}
	for i := range r.Policies {
		r.Policies[i].Share = float64(r.Policies[i].TotalNs) / float64(r.TotalNs)
	}
	var out bytes.Buffer
	if err := writeProfileText(&out, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "profile.golden.text", out.String())
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	cases := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"one sample", []time.Duration{7}, 99, 7},
		{"p99 of 100 is the 99th", hundred, 99, 99},
		{"p50 of 100 is the 50th", hundred, 50, 50},
		{"p99 of 3 is the largest", []time.Duration{1, 2, 3}, 99, 3},
		{"p0 is the smallest", []time.Duration{1, 2, 3}, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.samples, tc.p); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestProfileCommand checks the report's arithmetic on real evaluations: every enabled policy evaluated once per
// object and repetition, slowest first, statistics consistent with each other.
func TestProfileCommand(t *testing.T) {
	out, errOut, code := attest(t, "", "policy", "profile", "-f", "testdata/mixed", "-f", "testdata/json", "--config", "testdata/policies.yaml", "--repeat", "3", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r profileReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// testdata/policies.yaml leaves change-window off: nine of the ten library policies run.
	if r.Objects != 6 || r.Repeat != 3 || len(r.Policies) != 9 || r.Evaluations != 6*3*9 {
		t.Fatalf("objects %d, repeat %d, policies %d, evaluations %d", r.Objects, r.Repeat, len(r.Policies), r.Evaluations)
	}
	var total int64
	share := 0.0
	for i, p := range r.Policies {
		if p.Evaluations != 18 || p.TotalNs <= 0 || p.MeanNs != p.TotalNs/18 || p.P50Ns > p.P99Ns || p.P99Ns > p.MaxNs || p.MeanNs > p.MaxNs {
			t.Errorf("inconsistent %+v", p)
		}
		if i > 0 && p.TotalNs > r.Policies[i-1].TotalNs {
			t.Errorf("%s (%d) after %s (%d): not slowest first", p.Policy, p.TotalNs, r.Policies[i-1].Policy, r.Policies[i-1].TotalNs)
		}
		if p.Policy == "change-window" {
			t.Error("a policy that is off was profiled")
		}
		total += p.TotalNs
		share += p.Share
	}
	if total != r.TotalNs || share < 0.99 || share > 1.01 {
		t.Errorf("total %d vs %d, shares add up to %f", total, r.TotalNs, share)
	}
}

func TestProfileErrorsAndOutput(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "malformed.yaml")
	if err := os.WriteFile(malformed, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no input", nil, 2, "", "no input"},
		{"bad repeat", []string{"-f", "testdata/mixed", "--repeat", "0"}, 2, "", "--repeat must be at least 1"},
		{"bad format", []string{"-f", "testdata/mixed", "--format", "csv"}, 2, "", "--format must be text or json"},
		{"unreadable object", []string{"-f", malformed}, 2, "1 objects, 0 policy evaluations", malformed + ":1: Pod p: cannot read the Pod"},
		{"text", []string{"-f", "testdata/mixed"}, 0, "\nPOLICY ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", append([]string{"policy", "profile"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
	t.Run("output file", func(t *testing.T) {
		path := filepath.Join(dir, "profile.json")
		out, _, code := attest(t, "", "policy", "profile", "-f", "testdata/mixed", "--format", "json", "--output", path)
		data, err := os.ReadFile(path)
		if code != 0 || out != "" || err != nil || !json.Valid(data) {
			t.Fatalf("exit %d, stdout %q, file %q (%v)", code, out, data, err)
		}
	})
}
