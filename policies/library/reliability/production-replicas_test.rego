package attest.library.production_replicas_test

import rego.v1

import data.attest.library.production_replicas

# an object of kind with spec (replicas or not) in namespace shop, production or not
workload(kind, spec, production) := {
	"request": {"operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": kind}, "namespace": "shop", "name": "web"},
	"resource": {"kind": kind, "metadata": {"name": "web", "namespace": "shop"}, "spec": spec},
	"namespace": {"name": "shop", "labels": {"environment": "production"}, "production": production},
	"containers": [{"path": "spec.template.spec.containers[0]", "type": "container", "name": "app", "image": "gcr.io/company/app:1"}],
	"params": {"min_replicas": 2},
}

violations(doc) := v if {
	v := production_replicas.violation with input as doc
}

test_deployment_with_one_replica_denied if {
	violations(workload("Deployment", {"replicas": 1}, true)) == {{
		"message": "Deployment web has 1 replica, but workloads in production namespace shop need at least 2",
		"path": "spec.replicas",
		"fix": "set spec.replicas to 2 or more, or add a PolicyException",
	}}
}

test_statefulset_without_replicas_denied if {
	violations(workload("StatefulSet", {"serviceName": "db"}, true)) == {{
		"message": "StatefulSet web sets no spec.replicas, so it runs 1 replica, but workloads in production namespace shop need at least 2",
		"path": "spec.replicas",
		"fix": "set spec.replicas to 2 or more, or add a PolicyException",
	}}
}

test_replicaset_with_zero_replicas_denied if {
	{f.message | some f in violations(workload("ReplicaSet", {"replicas": 0}, true))} == {"ReplicaSet web has 0 replicas, but workloads in production namespace shop need at least 2"}
}

test_enough_replicas_allowed if {
	count(violations(workload("Deployment", {"replicas": 2}, true))) == 0
	count(violations(workload("StatefulSet", {"replicas": 5}, true))) == 0
}

test_not_production_allowed if {
	count(violations(workload("Deployment", {"replicas": 1}, false))) == 0
	count(violations(workload("Deployment", {}, false))) == 0
}

test_pods_and_other_controllers_not_judged if {
	judged := {kind |
		some kind in ["Pod", "DaemonSet", "Job", "CronJob"]
		count(violations(workload(kind, {}, true))) > 0
	}
	judged == set()
}

test_replicaset_controlled_by_a_deployment_not_judged if {
	doc := object.union(workload("ReplicaSet", {"replicas": 0}, true), {"resource": {"metadata": {"ownerReferences": [
		{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true},
	]}}})
	count(violations(doc)) == 0
}

test_non_controller_owner_still_judged if {
	doc := object.union(workload("ReplicaSet", {"replicas": 1}, true), {"resource": {"metadata": {"ownerReferences": [
		{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"},
	]}}})
	count(violations(doc)) == 1
}

test_min_replicas_parameter if {
	doc := object.union(workload("Deployment", {"replicas": 2}, true), {"params": {"min_replicas": 3}})
	violations(doc) == {{
		"message": "Deployment web has 2 replicas, but workloads in production namespace shop need at least 3",
		"path": "spec.replicas",
		"fix": "set spec.replicas to 3 or more, or add a PolicyException",
	}}
}

test_min_one_accepts_missing_replicas if {
	doc := object.union(workload("Deployment", {}, true), {"params": {"min_replicas": 1}})
	count(violations(doc)) == 0
}

test_generate_name_falls_back_to_request_name if {
	doc := workload("Deployment", {"replicas": 1}, true)
	unnamed := object.union(object.remove(doc, ["resource"]), {"resource": {"metadata": {"generateName": "web-"}, "spec": {"replicas": 1}}})
	{f.message | some f in violations(unnamed)} == {"Deployment web has 1 replica, but workloads in production namespace shop need at least 2"}
}
