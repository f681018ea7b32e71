# METADATA
# title: Team label
# description: Workloads name their owning team (v0 syntax, as the policy documents write it).
# custom:
#   name: team-label
#   severity: low
#   mode: audit
package company.team_label

deny[msg] {
	not input.resource.metadata.labels.team
	msg := sprintf("%s %s has no team label", [input.request.kind.kind, input.request.name])
}
