# METADATA
# title: Two replicas
# description: Deployments run two replicas or more.
# custom:
#   name: slow-replicas
#   severity: medium
#   remediation: set spec.replicas to 2 or more
package company.slow_replicas

import rego.v1

violation contains {"message": msg, "path": "spec.replicas"} if {
	msg := sprintf("%s has %v replicas", [input.request.name, input.resource.spec.replicas])
	input.request.kind.kind == "Deployment"
	input.resource.spec.replicas < 2
}
