# METADATA
# title: Team label default
# description: Objects without a team label get the platform team's.
# custom:
#   name: team-label
#   severity: low
#   mode: audit
#   remediation: set metadata.labels.team
package company.team_label

import rego.v1

violation contains {"message": "no team label", "path": "metadata.labels"} if {
	not input.resource.metadata.labels.team
}

patch contains {"op": "add", "path": "/metadata/labels/team", "value": "platform"} if {
	not input.resource.metadata.labels.team
}
