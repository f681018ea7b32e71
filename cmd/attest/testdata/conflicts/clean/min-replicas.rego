# METADATA
# title: At least two replicas
# description: Every Deployment survives a node going away, with room below the production minimum.
# custom:
#   name: min-two
#   severity: medium
#   mode: enforce
package company.min_two

import rego.v1

violation contains {"message": "fewer than two replicas", "path": "spec.replicas"} if {
	input.resource.spec.replicas < 2
}

# A second condition in the same rule is not read as a bound (it would be a guess).
violation contains {"message": "too many replicas for a canary", "path": "spec.replicas"} if {
	input.resource.metadata.labels.track == "canary"
	input.resource.spec.replicas > 1
	input.resource.spec.replicas > 0
}
