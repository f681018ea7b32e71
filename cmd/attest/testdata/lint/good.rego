# METADATA
# title: Owner annotation
# description: Workloads name their owner in an annotation, so that on-call knows whom to call.
# custom:
#   name: owner-annotation
#   severity: low
package company.owner_annotation

import rego.v1

prefix := "company.example/"

violation contains {"message": msg, "path": "metadata.annotations", "fix": "add the annotation"} if {
	key := concat("", [prefix, "owner"])
	not input.resource.metadata.annotations[key]
	msg := sprintf("no %s annotation", [key])
}
