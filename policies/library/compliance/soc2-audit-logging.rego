# METADATA
# title: SOC 2 audit logging
# description: >-
#   Workloads in production namespaces declare that they send audit logs, with the annotation
#   attest.continuu.ms/audit-logging: "enabled" (the key is a parameter), so an auditor can find the evidence for
#   every production service. Applies to every object with a pod spec; Pods and ReplicaSets a controller owns are
#   judged through that controller.
# custom:
#   name: soc2-audit-logging
#   severity: medium
#   mode: audit
#   remediation: annotate the workload with attest.continuu.ms/audit-logging "enabled" once it ships audit logs, or add a PolicyException
#   compliance:
#     soc2: [CC7.2, CC7.3]
#     hipaa: ["164.312(b)"]
#     gdpr: [Art. 30]
#   parameters:
#     annotation:
#       type: string
#       minLength: 1
#       maxLength: 317
#       pattern: "^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
#       default: attest.continuu.ms/audit-logging
#       description: the annotation whose value must be "enabled"
package attest.library.soc2_audit_logging

import rego.v1

key := input.params.annotation

path := sprintf("metadata.annotations[%q]", [key])

fix := sprintf("add the annotation %s: \"enabled\" to the workload's metadata once it ships audit logs, or add a PolicyException", [key])

controlled if {
	some ref in input.resource.metadata.ownerReferences
	ref.controller == true
}

applies if {
	count(input.containers) > 0
	input.namespace.production == true
	not controlled
}

violation contains {"message": msg, "path": path, "fix": fix} if {
	applies
	not has_annotation
	msg := sprintf("production workloads must enable audit logging: the annotation %s is missing", [key])
}

violation contains {"message": msg, "path": path, "fix": fix} if {
	applies
	value := input.resource.metadata.annotations[key]
	value != "enabled"
	msg := sprintf("production workloads must enable audit logging: the annotation %s is %q, not \"enabled\"", [key, value])
}

has_annotation if input.resource.metadata.annotations[key]
