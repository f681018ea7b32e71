package main

import (
	"strings"
	"testing"
)

func TestCedarCommands(t *testing.T) {
	examples := "../../examples/cedar"
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"validate a valid set", []string{"policy", "validate", examples}, 0, "1 policy valid: production\n", ""},
		{"validate names the syntax error's line", []string{"policy", "validate", "testdata/cedar/syntax.cedar"}, 1,
			"testdata/cedar/syntax.cedar:3: parser error: parse error at testdata/cedar/syntax.cedar:3:", "1 problem: the policies would be refused"},
		{"validate names the schema error's line", []string{"policy", "validate", "testdata/cedar/schema.cedar"}, 1,
			"testdata/cedar/schema.cedar:2: policy testdata/cedar/schema.cedar:2: unable to guarantee safety of access to optional attribute `spec` on entity type `core::v1::Pod`", "2 problems"},
		{"validate Rego and Cedar together", []string{"policy", "validate", "testdata/rego/pass", examples}, 0, "2 policies valid: production, two-replicas\n", ""},
		{"test runs the Cedar cases", []string{"policy", "test", examples}, 0, "PASS: 22/22\n", ""},
		{"test names a case's line", []string{"policy", "test", examples}, 0, "PASS cedar.audit deletes a production deployment (../../examples/cedar/production_test.yaml:", ""},
		{"schema", []string{"policy", "cedar-schema"}, 0, `entity Deployment = {"apiVersion"?: __cedar::String`, ""},
		{"authorize denies with the deciding policy", []string{"policy", "authorize", "--policies", examples, "--principal", `k8s::User::"ann"`, "--group", "audit",
			"--action", `k8s::admission::Action::"delete"`, "--resource", examples + "/deployment.yaml", "--now", "2026-03-02T10:00:00Z"}, 1,
			"DENY\n\nnote: this decision was due to the following policies:\n  audit-read-only\n  message: the audit group may read but never change or delete\n", ""},
		{"authorize allows", []string{"policy", "authorize", "--policies", examples, "--principal", `k8s::User::"dana"`, "--group", "developers",
			"--action", `k8s::admission::Action::"create"`, "--resource", examples + "/deployment.yaml", "--now", "2026-03-02T10:00:00Z"}, 0, "ALLOW\n", ""},
		{"authorize takes the context", []string{"policy", "authorize", "--policies", examples, "--principal", `k8s::User::"dana"`, "--group", "developers",
			"--action", `k8s::admission::Action::"create"`, "--resource", examples + "/deployment.yaml", "--context", `{"namespace": {"name": "prod", "labels": [], "production": true}}`}, 1,
			"developers-read-only-in-production", ""},
		{"authorize: Cedar semantics for other actions", []string{"policy", "authorize", "--policies", examples, "--principal", `k8s::User::"dana"`,
			"--action", `k8s::Action::"get"`, "--resource", examples + "/deployment.yaml"}, 1, "DENY\n", ""},
		{"authorize: a bad principal", []string{"policy", "authorize", "--policies", examples, "--principal", "dana",
			"--action", `k8s::admission::Action::"create"`, "--resource", examples + "/deployment.yaml"}, 2, "", `principal "dana": want an entity UID such as k8s::User::"alice"`},
		{"authorize: a bad context", []string{"policy", "authorize", "--policies", examples, "--principal", `k8s::User::"dana"`,
			"--action", `k8s::admission::Action::"create"`, "--resource", examples + "/deployment.yaml", "--context", `[1]`}, 2, "", "context: want a JSON object"},
		{"check applies Cedar Policies from the inputs", []string{"policy", "check", "--offline", "-f", "testdata/cedar/policy.yaml", "--as", "test-user",
			"--policy", "no-host-network", "--policy", "prod-configmaps", "--now", "2026-03-02T10:00:00Z"}, 1,
			"testdata/cedar/policy.yaml:22: DENY Pod default/host: [no-host-network] spec.hostNetwork: pods may not use the host network\n" +
				"testdata/cedar/policy.yaml:32: DENY ConfigMap default/prod-settings: [prod-configmaps] metadata.name: forbidden by the Cedar policy Policy/prod-configmaps:1\n" +
				"2 objects checked, 2 violations would be denied, 0 warnings (2 Cedar policies applied from the inputs)\n", ""},
		{"check: the principal is --as", []string{"policy", "check", "--offline", "-f", "testdata/cedar/policy.yaml", "--as", "someone",
			"--policy", "prod-configmaps"}, 0, "2 objects checked, 0 violations would be denied", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := attest(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nwant %q\nstderr:\n%s\nwant %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}
