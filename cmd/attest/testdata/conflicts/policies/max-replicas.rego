# METADATA
# title: At most one replica
# description: A singleton service runs exactly one replica (a lease it cannot share).
# custom:
#   name: max-replicas
#   severity: medium
#   mode: enforce
package company.max_replicas

import rego.v1

violation contains {"message": "more than one replica", "path": "spec.replicas"} if {
	replicas := input.resource.spec.replicas
	replicas > 1
}
