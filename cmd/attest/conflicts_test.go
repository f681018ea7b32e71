package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/continuums/attest/analysis"
)

// TestConflicts: fixtures with known answers, as JSON and as text, and the exit codes.
func TestConflicts(t *testing.T) {
	const dir = "testdata/conflicts"
	cases := []struct {
		name  string
		args  []string
		code  int
		want  []analysis.Conflict
		text  []string // lines the text form (--detailed) holds
		empty bool
	}{
		{name: "the library as configured has none", code: 0, empty: true, text: []string{"no conflicts found"}},
		{name: "a maximum below two minimums, one a parameter, one a library policy's", args: []string{"--policy", dir + "/policies"}, code: 1,
			want: []analysis.Conflict{
				{Kind: "bounds", Policies: []string{"max-replicas", "min-replicas"}, Path: "input.resource.spec.replicas",
					Message: "max-replicas and min-replicas can never both pass: input.resource.spec.replicas must be <= 1 for max-replicas and >= 3 for min-replicas",
					Details: []string{dir + "/policies/max-replicas.rego:14: max-replicas denies when replicas > 1", dir + "/policies/min-replicas.rego:16: min-replicas denies when r < input.params.minimum"}},
				{Kind: "bounds", Policies: []string{"max-replicas", "production-replicas"}, Path: "input.resource.spec.replicas",
					Message: "max-replicas and production-replicas can never both pass: input.resource.spec.replicas must be <= 1 for max-replicas and >= 2 for production-replicas"},
			},
			text: []string{"  " + dir + "/policies/max-replicas.rego:14: max-replicas denies when replicas > 1", "2 conflicts found"}},
		{name: "bounds that overlap, and a rule of two conditions, are no conflict", args: []string{"--policy", dir + "/clean"}, code: 0, empty: true},
		{name: "PolicyConfigs setting a scalar differently; lists merge", args: []string{"-f", dir + "/policyconfigs.yaml"}, code: 1,
			want: []analysis.Conflict{{Kind: "policyconfig", Policies: []string{"production-replicas"},
				Message: "production-replicas: parameter min_replicas is set differently by PolicyConfigs team-a-replicas and team-b-replicas; the last good value is kept"}},
			text: []string{"policyconfig: production-replicas: parameter min_replicas is set differently by PolicyConfigs team-a-replicas and team-b-replicas; the last good value is kept", "1 conflict found"}},
		{name: "two mutating policies writing one path; a custom policy repeating a library check", code: 1,
			args: []string{"--policy", dir + "/overlap", "--config", dir + "/overlap/policies.yaml", "-f", dir + "/overlap/manifests.yaml"},
			want: []analysis.Conflict{
				{Kind: "patch", Policies: []string{"owner-labels", "team-label"},
					Message: "owner-labels and team-label both patch /metadata/labels: the object depends on which runs last; let one policy own the path (1 overlapping write)",
					Details: []string{"Deployment shop/web (" + dir + "/overlap/manifests.yaml:1): owner-labels /metadata/labels (add) and team-label /metadata/labels/team (add)"}},
				{Kind: "duplicate", Policies: []string{"privileged-copy", "no-privileged"},
					Message: "privileged-copy reports exactly where library policy no-privileged does (1 finding on the manifests): the same check twice; keep one, or configure no-privileged's parameters instead",
					Details: []string{"Deployment shop/web (" + dir + "/overlap/manifests.yaml:1) spec.template.spec.containers[0]"}},
			},
			text: []string{"patch: owner-labels and team-label both patch /metadata/labels: the object depends on which runs last; let one policy own the path (1 overlapping write)",
				"  Deployment shop/web (" + dir + "/overlap/manifests.yaml:1) spec.template.spec.containers[0]", "2 conflicts found"}},
		{name: "without mutate the patches are not applied, so they cannot clash", code: 1,
			args: []string{"--policy", dir + "/overlap", "-f", dir + "/overlap/manifests.yaml"},
			want: []analysis.Conflict{
				{Kind: "duplicate", Policies: []string{"privileged-copy", "no-privileged"},
					Message: "privileged-copy reports exactly where library policy no-privileged does (1 finding on the manifests): the same check twice; keep one, or configure no-privileged's parameters instead"},
			},
			text: []string{"1 conflict found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"policy", "conflicts", "--config", "testdata/policies.yaml"}, c.args...)
			out, errOut, code := attest(t, "", append(args, "--format", "json")...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, out, errOut)
			}
			var report conflictsReport
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatal(err)
			}
			if c.empty != (len(report.Conflicts) == 0) || (!c.empty && len(report.Conflicts) != len(c.want)) {
				t.Fatalf("conflicts %+v, want %+v", report.Conflicts, c.want)
			}
			for i, w := range c.want {
				g := report.Conflicts[i]
				if g.Kind != w.Kind || strings.Join(g.Policies, ",") != strings.Join(w.Policies, ",") || g.Path != w.Path || g.Message != w.Message ||
					(w.Details != nil && strings.Join(g.Details, "\n") != strings.Join(w.Details, "\n")) {
					t.Fatalf("conflict %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
			text, _, _ := attest(t, "", append(args, "--detailed")...)
			for _, line := range c.text {
				if !strings.Contains(text, line+"\n") {
					t.Fatalf("text lacks %q:\n%s", line, text)
				}
			}
		})
	}
	if _, errOut, code := attest(t, "", "policy", "conflicts", "--format", "xml"); code != 2 || !strings.Contains(errOut, "--format") {
		t.Fatalf("bad format: exit %d %s", code, errOut)
	}
	if _, errOut, code := attest(t, "", "policy", "conflicts", "--policy", dir+"/nope"); code != 2 || !strings.Contains(errOut, "--policy") {
		t.Fatalf("missing policy dir: exit %d %s", code, errOut)
	}
}
