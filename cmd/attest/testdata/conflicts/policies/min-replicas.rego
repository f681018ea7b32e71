# METADATA
# title: At least three replicas
# description: Every Deployment survives two nodes going away.
# custom:
#   name: min-replicas
#   severity: medium
#   mode: enforce
#   parameters:
#     minimum: {type: integer, default: 3}
package company.min_replicas

import rego.v1

violation contains {"message": msg, "path": "spec.replicas"} if {
	r := object.get(input.resource.spec, "replicas", 1)
	r < input.params.minimum
	msg := sprintf("%d replicas, fewer than %d", [r, input.params.minimum])
}
