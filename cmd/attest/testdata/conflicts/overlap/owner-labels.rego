# METADATA
# title: Owner labels default
# description: Objects without owner labels get the cost centre's, which sets the team too.
# custom:
#   name: owner-labels
#   severity: low
#   mode: audit
#   remediation: set metadata.labels
package company.owner_labels

import rego.v1

violation contains {"message": "no owner label", "path": "metadata.labels"} if {
	not input.resource.metadata.labels.owner
}

patch contains {"op": "add", "path": "/metadata/labels", "value": {"owner": "finance", "team": "payments"}} if {
	not input.resource.metadata.labels.owner
}
