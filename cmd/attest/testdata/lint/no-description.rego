# METADATA
# title: Team label
# custom:
#   name: team-label
#   severity: low
package company.team_label

import rego.v1

violation contains {"message": "no team label", "path": "metadata.labels"} if {
	not input.resource.metadata.labels.team
}
