# METADATA
# title: No privileged containers (a Rego policy validated beside Gatekeeper templates)
# custom:
#   name: no-privileged-rego
package test.gatekeeper.no_privileged

import rego.v1

violation contains "privileged" if {
	some c in input.containers
	c.securityContext.privileged
}
