# METADATA
# title: At least two replicas
# custom:
#   name: two-replicas
#   severity: low
#   mode: audit
package custom.two_replicas

import rego.v1

violation contains {"message": msg, "path": "spec.replicas"} if {
	input.resource.kind == "Deployment"
	n := object.get(input.resource.spec, "replicas", 1)
	n < 2
	msg := sprintf("%d replicas; run at least 2", [n])
}
