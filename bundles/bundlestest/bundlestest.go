// Package bundlestest holds the policy bundle that the tests of several packages build and push: a Rego policy
// that denies workloads without a team label, and its Rego tests.
package bundlestest

// TeamLabelMessage is the policy's message, which tests replace to tell two versions of the bundle apart.
const TeamLabelMessage = "workloads carry a team label"

// TeamLabelPolicy denies workloads without a team label (policy acme-team-label, enforce, under root acme).
const TeamLabelPolicy = `# METADATA
# title: Team label
# custom:
#   name: acme-team-label
#   severity: high
#   mode: enforce
package acme.team_label

import rego.v1

violation contains {"message": "` + TeamLabelMessage + `", "path": "metadata.labels.team"} if {
	not input.resource.metadata.labels.team
}
`

// TeamLabelTest is TeamLabelPolicy's Rego tests: both pass.
const TeamLabelTest = `package acme.team_label_test

import rego.v1

import data.acme.team_label

test_denies_without_label if {
	count(team_label.violation) == 1 with input as {"resource": {"metadata": {"labels": {}}}}
}

test_allows_with_label if {
	count(team_label.violation) == 0 with input as {"resource": {"metadata": {"labels": {"team": "a"}}}}
}
`
