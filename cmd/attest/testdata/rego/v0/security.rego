# A policy in the policy documents' own layout: Rego v0, no METADATA, the {"violated": ...} form.
package attest.security

violation[{"violated": true, "message": msg, "severity": "high"}] {
	c := input.containers[_]
	c.securityContext.runAsUser == 0
	msg := sprintf("container %s runs as root", [c.name])
}
