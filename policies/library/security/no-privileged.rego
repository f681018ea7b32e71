# METADATA
# title: No privileged containers
# description: >-
#   A privileged container has every capability and every device of the node; one compromise of it is a
#   compromise of the node. Applies to containers, init containers and ephemeral (debug) containers alike.
# custom:
#   name: no-privileged
#   severity: critical
#   mode: enforce
#   remediation: remove securityContext.privileged or add a PolicyException
#   compliance:
#     soc2: [CC6.1, CC6.8]
#     hipaa: ["164.312(a)(1)"]
#     gdpr: [Art. 32]
package attest.library.no_privileged

import rego.v1

violation contains {"message": "privileged containers are not allowed", "path": c.path} if {
	some c in input.containers
	c.securityContext.privileged == true
}
