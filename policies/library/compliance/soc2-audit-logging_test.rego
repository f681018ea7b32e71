package attest.library.soc2_audit_logging_test

import rego.v1

import data.attest.library.soc2_audit_logging

key := "attest.continuu.ms/audit-logging"

path := "metadata.annotations[\"attest.continuu.ms/audit-logging\"]"

fix := "add the annotation attest.continuu.ms/audit-logging: \"enabled\" to the workload's metadata once it ships audit logs, or add a PolicyException"

container_path := {
	"Pod": "spec.containers[0]",
	"Deployment": "spec.template.spec.containers[0]",
	"StatefulSet": "spec.template.spec.containers[0]",
	"DaemonSet": "spec.template.spec.containers[0]",
	"Job": "spec.template.spec.containers[0]",
	"CronJob": "spec.jobTemplate.spec.template.spec.containers[0]",
}

workload(kind, annotations, production) := {
	"request": {"operation": "CREATE", "kind": {"kind": kind}, "namespace": "shop", "name": "web"},
	"resource": {"kind": kind, "metadata": {"name": "web", "annotations": annotations}},
	"namespace": {"name": "shop", "production": production},
	"containers": [{"path": container_path[kind], "type": "container", "name": "app", "image": "gcr.io/company/app:1"}],
	"params": {"annotation": key},
}

violations(doc) := v if {
	v := soc2_audit_logging.violation with input as doc
}

test_production_pod_without_annotation_denied if {
	violations(workload("Pod", {}, true)) == {{
		"message": "production workloads must enable audit logging: the annotation attest.continuu.ms/audit-logging is missing",
		"path": path,
		"fix": fix,
	}}
}

test_every_production_kind_without_annotation_denied if {
	denied := {kind |
		some kind, _ in container_path
		count(violations(workload(kind, {"team": "shop"}, true))) == 1
	}
	denied == {"Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
}

test_production_deployment_disabled_denied if {
	violations(workload("Deployment", {key: "disabled"}, true)) == {{
		"message": "production workloads must enable audit logging: the annotation attest.continuu.ms/audit-logging is \"disabled\", not \"enabled\"",
		"path": path,
		"fix": fix,
	}}
}

test_true_is_not_enabled if {
	count(violations(workload("CronJob", {key: "true"}, true))) == 1
}

test_enabled_allowed if {
	allowed := {kind |
		some kind, _ in container_path
		count(violations(workload(kind, {key: "enabled"}, true))) == 0
	}
	count(allowed) == 6
}

test_not_production_allowed if {
	count(violations(workload("Deployment", {}, false))) == 0
	count(violations(workload("Pod", {}, false))) == 0
}

test_object_without_pod_spec_not_judged if {
	doc := object.union(workload("Deployment", {}, true), {"request": {"kind": {"kind": "Service"}}, "containers": []})
	count(violations(doc)) == 0
}

test_pod_owned_by_a_replicaset_judged_through_it if {
	doc := object.union(workload("Pod", {}, true), {"resource": {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]}}})
	count(violations(doc)) == 0
}

test_configured_annotation_key if {
	doc := object.union(workload("StatefulSet", {key: "enabled"}, true), {"params": {"annotation": "audit.company.com/logging"}})
	violations(doc) == {{
		"message": "production workloads must enable audit logging: the annotation audit.company.com/logging is missing",
		"path": "metadata.annotations[\"audit.company.com/logging\"]",
		"fix": "add the annotation audit.company.com/logging: \"enabled\" to the workload's metadata once it ships audit logs, or add a PolicyException",
	}}
	count(violations(object.union(doc, {"resource": {"metadata": {"annotations": {"audit.company.com/logging": "enabled"}}}}))) == 0
}
