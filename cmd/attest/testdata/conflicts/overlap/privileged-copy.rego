# METADATA
# title: No privileged containers (our copy)
# description: The library's no-privileged check, written again.
# custom:
#   name: privileged-copy
#   severity: high
#   mode: enforce
#   remediation: remove securityContext.privileged
package company.privileged_copy

import rego.v1

violation contains {"message": "privileged", "path": c.path} if {
	some c in input.containers
	c.securityContext.privileged
}
