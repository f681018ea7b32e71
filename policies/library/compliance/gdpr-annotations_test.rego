package attest.library.gdpr_annotations_test

import rego.v1

import data.attest.library.gdpr_annotations

marker := "gdpr.attest.continuu.ms/personal-data"

complete := {
	"gdpr.attest.continuu.ms/lawful-basis": "contract",
	"gdpr.attest.continuu.ms/data-controller": "Example GmbH, privacy@example.com",
	"gdpr.attest.continuu.ms/retention-period": "30d",
}

container_path := {
	"Pod": "spec.containers[0]",
	"Deployment": "spec.template.spec.containers[0]",
	"StatefulSet": "spec.template.spec.containers[0]",
	"DaemonSet": "spec.template.spec.containers[0]",
	"Job": "spec.template.spec.containers[0]",
	"CronJob": "spec.jobTemplate.spec.template.spec.containers[0]",
}

workload(kind, labels, annotations) := {
	"request": {"operation": "CREATE", "kind": {"kind": kind}, "namespace": "shop", "name": "web"},
	"resource": {"kind": kind, "metadata": {"name": "web", "labels": labels, "annotations": annotations}},
	"namespace": {"name": "shop", "production": false},
	"containers": [{"path": container_path[kind], "type": "container", "name": "app", "image": "gcr.io/company/app:1"}],
}

violations(doc) := v if {
	v := gdpr_annotations.violation with input as doc
}

messages(doc) := {f.message | some f in violations(doc)}

test_labelled_pod_without_annotations_denied if {
	violations(workload("Pod", {marker: "true"}, {})) == {
		{
			"message": "workloads that process personal data must record their lawful basis for processing (GDPR Art. 6: consent, contract, legal-obligation, vital-interests, public-task or legitimate-interests) in the annotation gdpr.attest.continuu.ms/lawful-basis",
			"path": "metadata.annotations[\"gdpr.attest.continuu.ms/lawful-basis\"]",
			"fix": "add the annotation gdpr.attest.continuu.ms/lawful-basis to the workload's metadata, or add a PolicyException",
		},
		{
			"message": "workloads that process personal data must record their data controller in the annotation gdpr.attest.continuu.ms/data-controller",
			"path": "metadata.annotations[\"gdpr.attest.continuu.ms/data-controller\"]",
			"fix": "add the annotation gdpr.attest.continuu.ms/data-controller to the workload's metadata, or add a PolicyException",
		},
		{
			"message": "workloads that process personal data must record how long they keep the data in the annotation gdpr.attest.continuu.ms/retention-period",
			"path": "metadata.annotations[\"gdpr.attest.continuu.ms/retention-period\"]",
			"fix": "add the annotation gdpr.attest.continuu.ms/retention-period to the workload's metadata, or add a PolicyException",
		},
	}
}

test_annotated_deployment_missing_one_denied if {
	annotations := object.union(object.remove(complete, ["gdpr.attest.continuu.ms/data-controller"]), {marker: "true"})
	messages(workload("Deployment", {}, annotations)) == {"workloads that process personal data must record their data controller in the annotation gdpr.attest.continuu.ms/data-controller"}
}

test_blank_annotation_counts_as_missing if {
	annotations := object.union(complete, {"gdpr.attest.continuu.ms/lawful-basis": "  "})
	count(violations(workload("StatefulSet", {marker: "true"}, annotations))) == 1
}

test_complete_annotations_allowed_in_every_kind if {
	allowed := {kind |
		some kind, _ in container_path
		count(violations(workload(kind, {marker: "true"}, complete))) == 0
	}
	count(allowed) == 6
}

test_every_kind_judged if {
	denied := {kind |
		some kind, _ in container_path
		count(violations(workload(kind, {marker: "true"}, {}))) == 3
	}
	count(denied) == 6
}

test_unmarked_workloads_allowed if {
	count(violations(workload("Deployment", {}, {}))) == 0
	count(violations(workload("Job", {marker: "false"}, {marker: "no"}))) == 0
}

test_marker_case_insensitive if {
	count(violations(workload("CronJob", {marker: "True"}, {}))) == 3
}

test_controlled_pod_judged_through_owner if {
	doc := object.union(workload("Pod", {marker: "true"}, {}), {"resource": {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]}}})
	count(violations(doc)) == 0
}

retention(value) := v if {
	v := violations(workload("Deployment", {marker: "true"}, object.union(complete, {"gdpr.attest.continuu.ms/retention-period": value})))
}

test_invalid_retention_denied_with_example if {
	retention("30 days") == {{
		"message": "the retention period \"30 days\" in the annotation gdpr.attest.continuu.ms/retention-period is not a duration longer than zero",
		"path": "metadata.annotations[\"gdpr.attest.continuu.ms/retention-period\"]",
		"fix": "write it as a duration such as 30d, 720h, 2w or ISO 8601 P30D, P1Y2M, PT12H",
	}}
}

test_valid_retention_periods if {
	valid := [
		"30d", "720h", "90m", "2w", "1h30m", "1.5h", "1w2d", "300ms", "45s", "0d1h",
		"P30D", "P1Y2M", "PT12H", "P2W", "P1DT12H", "PT0.5S", "PT1,5S", "P1Y", "PT90M",
	]
	rejected := [value | some value in valid; count(retention(value)) > 0]
	rejected == []
}

test_invalid_retention_periods if {
	invalid := [
		"30 days", "P", "PT", "-5d", "0d", "0h0m", "P0D", "PT0S", "30", "d", "30D", "p30d", "P1DT",
		"1y", " 30d", "30d ", "P30DT", "PT12", "P1.5D", "1h-30m", "+5d", "P-1D", "1e3h", ".5h",
	]
	accepted := [value | some value in invalid; count(retention(value)) == 0]
	accepted == []
}
