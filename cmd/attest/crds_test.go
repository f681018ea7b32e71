package main

import (
	"strings"
	"testing"

	"github.com/continuums/attest/policies/cedar"
)

// TestCedarCRDs runs the Cedar commands with --crds: the custom kind is in the schema, policies about it
// validate (and a misspelt field is refused at its line), objects of it are decided, a CRD that cannot be
// converted is a warning, and bad --crds input is a usage error.
func TestCedarCRDs(t *testing.T) {
	const crds = "testdata/cedar/crds"
	const warning = "warning: CustomResourceDefinition odd-kinds.storage.example.com: spec.names.kind \"Odd-Kind\" is not a Cedar identifier: its kinds are left out of the Cedar schema"
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"schema has the custom kind", []string{"policy", "cedar-schema", "--crds", crds}, 0,
			"namespace com::example::storage::v1 {\n\tentity Database = {\"apiVersion\"?: __cedar::String, \"kind\"?: __cedar::String, \"metadata\"?: meta::v1::ObjectMeta, \"spec\"?: {\"engine\": __cedar::String, \"protected\"?: __cedar::Bool, \"replicas\"?: __cedar::Long}, \"oldObject\"?: Database};", warning},
		{"schema from a CRD file", []string{"policy", "cedar-schema", "--crds", crds + "/databases.yaml"}, 0, "entity Database = ", ""},
		{"validate without --crds refuses the kind", []string{"policy", "validate", "testdata/cedar/database.cedar"}, 1,
			"unrecognized entity type `com::example::storage::v1::Database`", ""},
		{"validate with --crds", []string{"policy", "validate", "--crds", crds, "testdata/cedar/database.cedar"}, 0, "1 policy valid: database\n", warning},
		{"validate names the misspelt field's line", []string{"policy", "validate", "--crds", crds, "testdata/cedar/database-misspelt.cedar"}, 1,
			"testdata/cedar/database-misspelt.cedar:1: policy testdata/cedar/database-misspelt.cedar:1: attribute `spec.engin` on entity type `com::example::storage::v1::Database` not found", ""},
		{"authorize denies deleting a protected object", []string{"policy", "authorize", "--crds", crds, "--policies", "testdata/cedar/database.cedar",
			"--principal", `k8s::User::"dana"`, "--action", `k8s::admission::Action::"delete"`, "--resource", "testdata/cedar/database.yaml"}, 1,
			"DENY\n\nnote: this decision was due to the following policies:\n  protected-databases\n  message: this Database is protected: unset spec.protected first\n", ""},
		{"check applies a Policy about the custom kind", []string{"policy", "check", "--offline", "--crds", crds, "-f", "testdata/cedar/database-policy.yaml",
			"--policy", "few-database-replicas", "--now", "2026-03-02T10:00:00Z"}, 1,
			"testdata/cedar/database-policy.yaml:11: DENY Database default/big: [few-database-replicas] spec.replicas: at most 3 replicas\n" +
				"2 objects checked, 1 violations would be denied, 0 warnings (1 Cedar policies applied from the inputs)\n", warning},
		{"check without --crds refuses the Policy", []string{"policy", "check", "--offline", "-f", "testdata/cedar/database-policy.yaml"}, 2,
			"", "unrecognized entity type `com::example::storage::v1::Database`"},
		{"test runs Cedar cases about the custom kind", []string{"policy", "test", "--crds", crds + "/databases.yaml", "testdata/cedar/database_test.yaml"}, 0, "PASS: 2/2\n", ""},
		{"test without --crds", []string{"policy", "test", "testdata/cedar/database_test.yaml"}, 2, "", "unrecognized entity type `com::example::storage::v1::Database`"},
		{"--crds with no CRD", []string{"policy", "cedar-schema", "--crds", "testdata/cedar/policy.yaml"}, 2, "",
			"--crds: no CustomResourceDefinition (apiextensions.k8s.io/v1) in testdata/cedar/policy.yaml"},
		{"--crds that does not exist", []string{"policy", "cedar-schema", "--crds", "testdata/cedar/nope"}, 2, "", "--crds: stat testdata/cedar/nope"},
		// The full build reads the kubeconfig; the lean one hands the run to attest-full (none beside the test binary).
		{"--kubeconfig that does not exist", []string{"policy", "cedar-schema", "--kubeconfig", "testdata/cedar/nope.kubeconfig"}, 1, "", kubeconfigMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				if _, err := cedar.UseCustomKinds(nil); err != nil { // the schema is process-wide: the next test starts with the built-in one
					t.Error(err)
				}
			})
			out, errOut, code := attest(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nwant %q\nstderr:\n%s\nwant %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}
