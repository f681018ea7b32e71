# METADATA
# title: GDPR processing annotations
# description: >-
#   Workloads that process personal data, marked with the label or annotation
#   gdpr.attest.continuu.ms/personal-data: "true", record what the record of processing activities (GDPR Art. 30)
#   needs in three annotations: gdpr.attest.continuu.ms/lawful-basis, gdpr.attest.continuu.ms/data-controller and
#   gdpr.attest.continuu.ms/retention-period. The retention period is a duration, either Go-style with days and
#   weeks (30d, 720h, 90m, 1w2d, 1h30m) or ISO 8601 (P30D, P1Y2M, PT12H), and longer than zero. Pods and
#   ReplicaSets a controller owns are judged through that controller.
# custom:
#   name: gdpr-annotations
#   severity: medium
#   mode: audit
#   remediation: annotate the workload with its lawful basis, data controller and retention period, or add a PolicyException
#   compliance:
#     gdpr: ["Art. 5(1)(e)", Art. 6, Art. 30]
#     soc2: [P4.2]
package attest.library.gdpr_annotations

import rego.v1

prefix := "gdpr.attest.continuu.ms/"

marker := "gdpr.attest.continuu.ms/personal-data"

# Only the metadata fields the policy judges are read (not the object's name or UID), so the Pods of one template
# share one decision in the webhook's memo.
default annotations := {}

annotations := input.resource.metadata.annotations

controlled if {
	some ref in input.resource.metadata.ownerReferences
	ref.controller == true
}

personal_data if lower(input.resource.metadata.labels[marker]) == "true"

personal_data if lower(annotations[marker]) == "true"

applies if {
	personal_data
	not controlled
}

# required names each annotation and what it records, for the message
required := {
	"lawful-basis": "their lawful basis for processing (GDPR Art. 6: consent, contract, legal-obligation, vital-interests, public-task or legitimate-interests)",
	"data-controller": "their data controller",
	"retention-period": "how long they keep the data",
}

annotation_path(key) := sprintf("metadata.annotations[%q]", [key])

violation contains {"message": msg, "path": annotation_path(key), "fix": fix} if {
	applies
	some name, what in required
	key := concat("", [prefix, name])
	trim_space(object.get(annotations, key, "")) == ""
	msg := sprintf("workloads that process personal data must record %s in the annotation %s", [what, key])
	fix := sprintf("add the annotation %s to the workload's metadata, or add a PolicyException", [key])
}

violation contains {"message": msg, "path": annotation_path(key), "fix": fix} if {
	applies
	key := concat("", [prefix, "retention-period"])
	value := annotations[key]
	trim_space(value) != ""
	not valid_duration(value)
	msg := sprintf("the retention period %q in the annotation %s is not a duration longer than zero", [value, key])
	fix := "write it as a duration such as 30d, 720h, 2w or ISO 8601 P30D, P1Y2M, PT12H"
}

# --- durations ---

# Go-style: one or more number+unit parts, with d (24h) and w (7d) added to Go's units.
go_duration := `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+$`

go_part := `([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)`

unit_seconds := {
	"ns": 0.000000001, "us": 0.000001, "µs": 0.000001, "ms": 0.001,
	"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
}

valid_duration(s) if {
	regex.match(go_duration, s)
	total := sum([seconds |
		some p in regex.find_all_string_submatch_n(go_part, s, -1)
		seconds := to_number(p[1]) * unit_seconds[p[2]]
	])
	total > 0
}

# ISO 8601: P[nY][nM][nW][nD][T[nH][nM][n[.n]S]], at least one part, and a T only before time parts.
iso_duration := `^P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:[.,][0-9]+)?)S)?)?$`

valid_duration(s) if {
	regex.match(iso_duration, s)
	s != "P"
	not endswith(s, "T")
	parts := regex.find_all_string_submatch_n(iso_duration, s, 1)[0]
	total := sum([to_number(replace(n, ",", ".")) | some n in array.slice(parts, 1, count(parts)); n != ""])
	total > 0
}
