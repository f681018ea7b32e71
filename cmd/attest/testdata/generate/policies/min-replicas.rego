# METADATA
# title: At least two replicas
# description: Deployments run at least two replicas.
# custom:
#   name: min-replicas
#   severity: medium
#   mode: enforce
#   remediation: set spec.replicas to 2 or more
package company.min_replicas

import rego.v1

violation contains {"message": msg, "path": "spec.replicas"} if {
	input.request.kind.kind == "Deployment"
	r := object.get(input.resource.spec, "replicas", 1)
	r < 2
	msg := sprintf("%d replica(s) is too few", [r])
}
