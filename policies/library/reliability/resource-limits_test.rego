package attest.library.resource_limits_test

import rego.v1

import data.attest.library.resource_limits

defaults := {
	"require_limits": true,
	"default_limits": {"cpu": "500m", "memory": "512Mi"},
	"default_requests": {"cpu": "100m", "memory": "128Mi"},
}

limited := {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}

container(path, type, resources) := {"path": path, "type": type, "name": "app", "image": "gcr.io/company/app:1", "resources": resources}

run(containers, params) := v if {
	v := resource_limits.violation with input as {"containers": containers, "params": params}
}

patch(containers, params) := p if {
	p := resource_limits.patch with input as {"containers": containers, "params": params}
}

# --- quantities compare as numbers ---

test_quantities_compare_numerically if {
	resource_limits.quantity("500m") < resource_limits.quantity("1")
	resource_limits.quantity("1Gi") > resource_limits.quantity("1000Mi")
	resource_limits.quantity("1.5") == 1.5
	resource_limits.quantity("1500m") == resource_limits.quantity("1.5")
	resource_limits.quantity("1k") == 1000
	resource_limits.quantity("1Ki") == 1024
	resource_limits.quantity("1M") < resource_limits.quantity("1Mi")
	resource_limits.quantity("128974848") == resource_limits.quantity("129e6") - 25152
	resource_limits.quantity("1e3") == 1000
	resource_limits.quantity("1E3") == 1000
	resource_limits.quantity("500000u") == resource_limits.quantity("500m")
	resource_limits.quantity("250000000n") == resource_limits.quantity("250m")
	resource_limits.quantity(".5") == 0.5
	resource_limits.quantity("2") > resource_limits.quantity("1999m")
	resource_limits.quantity(2) == 2
}

test_not_quantities if {
	not_quantities := ["", "1 Gi", "1GB", "1K", "1g", "abc", "-1", "+1", "1e", "Mi", "1.5.1", "1mi", "1Gi ", null, true, -2, {}]
	accepted := [q | some q in not_quantities; resource_limits.quantity(q)]
	accepted == []
}

# --- limits required ---

test_pod_without_limits_denied if {
	run([container("spec.containers[0]", "container", null)], defaults) == {{
		"message": "no CPU or memory limit is set",
		"path": "spec.containers[0].resources.limits",
		"fix": "set resources.limits.cpu and resources.limits.memory, or add a PolicyException",
	}}
}

test_deployment_without_memory_limit_denied if {
	res := {"limits": {"cpu": "1"}, "requests": {"memory": "256Mi"}}
	run([container("spec.template.spec.containers[0]", "container", res)], defaults) == {{
		"message": "no memory limit is set",
		"path": "spec.template.spec.containers[0].resources.limits",
		"fix": "set resources.limits.memory, or add a PolicyException",
	}}
}

test_cronjob_init_container_without_cpu_limit_denied if {
	path := "spec.jobTemplate.spec.template.spec.initContainers[0]"
	run([container(path, "init", {"limits": {"memory": "64Mi"}})], defaults) == {{
		"message": "no CPU limit is set",
		"path": "spec.jobTemplate.spec.template.spec.initContainers[0].resources.limits",
		"fix": "set resources.limits.cpu, or add a PolicyException",
	}}
}

test_limits_set_allowed if {
	count(run([container("spec.containers[0]", "container", limited)], defaults)) == 0
	count(run([container("spec.template.spec.containers[0]", "container", limited), container("spec.template.spec.initContainers[0]", "init", limited)], defaults)) == 0
}

test_ephemeral_containers_not_judged if {
	count(run([container("spec.ephemeralContainers[0]", "ephemeral", null)], defaults)) == 0
	count(patch([container("spec.ephemeralContainers[0]", "ephemeral", null)], defaults)) == 0
}

test_limits_not_required if {
	count(run([container("spec.containers[0]", "container", null)], object.union(defaults, {"require_limits": false}))) == 0
}

# --- invalid quantities ---

test_invalid_quantities_reported if {
	res := {"limits": {"cpu": "2 cores", "memory": "1GB", "nvidia.com/gpu": "one"}, "requests": {"cpu": "100m"}}
	fix := "write a Kubernetes quantity, such as 500m or 2 for CPU and 256Mi or 1Gi for memory"
	run([container("spec.template.spec.containers[1]", "container", res)], defaults) == {
		{"message": "resources.limits.cpu \"2 cores\" is not a valid quantity", "path": "spec.template.spec.containers[1].resources.limits.cpu", "fix": fix},
		{"message": "resources.limits.memory \"1GB\" is not a valid quantity", "path": "spec.template.spec.containers[1].resources.limits.memory", "fix": fix},
		{"message": "resources.limits.nvidia.com/gpu \"one\" is not a valid quantity", "path": "spec.template.spec.containers[1].resources.limits[\"nvidia.com/gpu\"]", "fix": fix},
	}
}

test_invalid_request_reported_beside_a_valid_limit if {
	res := {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "lots"}}
	run([container("spec.containers[0]", "container", res)], defaults) == {{
		"message": "resources.requests.cpu \"lots\" is not a valid quantity",
		"path": "spec.containers[0].resources.requests.cpu",
		"fix": "write a Kubernetes quantity, such as 500m or 2 for CPU and 256Mi or 1Gi for memory",
	}}
}

test_numeric_quantities_valid if {
	count(run([container("spec.containers[0]", "container", {"limits": {"cpu": 2, "memory": 1073741824}})], object.union(defaults, {"max_cpu": "2", "max_memory": "1Gi"}))) == 0
}

# --- maximums ---

test_cpu_limit_above_maximum_denied if {
	res := {"limits": {"cpu": "2500m", "memory": "1Gi"}}
	run([container("spec.template.spec.containers[0]", "container", res)], object.union(defaults, {"max_cpu": "2"})) == {{
		"message": "CPU limit 2500m is above the maximum of 2",
		"path": "spec.template.spec.containers[0].resources.limits.cpu",
		"fix": "lower resources.limits.cpu to 2 or less, or add a PolicyException",
	}}
}

test_memory_limit_compared_as_quantity if {
	params := object.union(defaults, {"max_memory": "1000Mi"})

	# "1Gi" < "1000Mi" as text, but 1073741824 > 1048576000 bytes
	run([container("spec.containers[0]", "container", {"limits": {"cpu": "1", "memory": "1Gi"}})], params) == {{
		"message": "memory limit 1Gi is above the maximum of 1000Mi",
		"path": "spec.containers[0].resources.limits.memory",
		"fix": "lower resources.limits.memory to 1000Mi or less, or add a PolicyException",
	}}

	# "900Mi" > "1000Mi" as text, but it is less
	count(run([container("spec.containers[0]", "container", {"limits": {"cpu": "1", "memory": "900Mi"}})], params)) == 0
}

test_limits_at_the_maximum_allowed if {
	params := object.union(defaults, {"max_cpu": "1.5", "max_memory": "2Gi"})
	count(run([container("spec.containers[0]", "container", {"limits": {"cpu": "1500m", "memory": "2048Mi"}})], params)) == 0
	count(run([container("spec.containers[0]", "container", {"limits": {"cpu": "500m", "memory": "2Gi"}})], params)) == 0
}

test_request_above_maximum_without_limit_denied if {
	res := {"requests": {"cpu": "4"}}
	run([container("spec.containers[0]", "container", res)], object.union(defaults, {"require_limits": false, "max_cpu": "2"})) == {{
		"message": "CPU request 4 is above the maximum of 2",
		"path": "spec.containers[0].resources.requests.cpu",
		"fix": "lower resources.requests.cpu to 2 or less, or add a PolicyException",
	}}
}

# --- patch ---

test_patch_adds_resources_when_absent if {
	patch([container("spec.template.spec.containers[0]", "container", null)], defaults) == {{
		"op": "add",
		"path": "/spec/template/spec/containers/0/resources",
		"value": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
	}}
}

test_patch_adds_limits_when_only_requests_set if {
	# the default limit is raised to the container's own request, so the object stays valid
	res := {"requests": {"cpu": "2", "memory": "64Mi"}}
	patch([container("spec.jobTemplate.spec.template.spec.initContainers[1]", "init", res)], defaults) == {{
		"op": "add",
		"path": "/spec/jobTemplate/spec/template/spec/initContainers/1/resources/limits",
		"value": {"cpu": "2", "memory": "512Mi"},
	}}
}

test_patch_adds_missing_keys_only if {
	# a CPU limit without request: Kubernetes requests the limit, so no CPU request is added
	res := {"limits": {"cpu": "250m"}, "requests": {}}
	patch([container("spec.containers[2]", "container", res)], defaults) == {
		{"op": "add", "path": "/spec/containers/2/resources/limits/memory", "value": "512Mi"},
		{"op": "add", "path": "/spec/containers/2/resources/requests/memory", "value": "128Mi"},
	}
}

test_patch_adds_requests_object_when_absent if {
	res := {"limits": {"cpu": "1"}}
	patch([container("spec.containers[0]", "container", res)], defaults) == {
		{"op": "add", "path": "/spec/containers/0/resources/limits/memory", "value": "512Mi"},
		{"op": "add", "path": "/spec/containers/0/resources/requests", "value": {"memory": "128Mi"}},
	}
}

test_patch_lowers_default_request_to_default_limit if {
	params := {"require_limits": true, "default_limits": {"cpu": "50m"}, "default_requests": {"cpu": "100m"}}
	patch([container("spec.containers[0]", "container", null)], params) == {{
		"op": "add", "path": "/spec/containers/0/resources",
		"value": {"limits": {"cpu": "50m"}, "requests": {"cpu": "50m"}},
	}}
}

test_patch_nothing_when_compliant_or_no_defaults if {
	count(patch([container("spec.containers[0]", "container", limited)], defaults)) == 0
	count(patch([container("spec.containers[0]", "container", null)], {"require_limits": true, "default_limits": {}, "default_requests": {}})) == 0
	count(patch([container("spec.containers[0]", "container", null)], {"require_limits": true})) == 0
}

test_patch_skips_invalid_own_request if {
	# the invalid request is reported by the violation; the patch does not guess
	res := {"requests": {"cpu": "lots"}}
	patch([container("spec.containers[0]", "container", res)], defaults) == {
		{"op": "add", "path": "/spec/containers/0/resources/limits", "value": {"memory": "512Mi"}},
		{"op": "add", "path": "/spec/containers/0/resources/requests/memory", "value": "128Mi"},
	}
}

test_patch_each_container if {
	p := patch(
		[
			container("spec.template.spec.initContainers[0]", "init", null),
			container("spec.template.spec.containers[0]", "container", limited),
			container("spec.template.spec.containers[1]", "container", null),
		],
		defaults,
	)
	{op.path | some op in p} == {"/spec/template/spec/initContainers/0/resources", "/spec/template/spec/containers/1/resources"}
}

test_patched_object_passes if {
	# what the patch adds satisfies the violation rules
	c := container("spec.containers[0]", "container", null)
	some op in patch([c], defaults)
	count(run([object.union(c, {"resources": op.value})], object.union(defaults, {"max_cpu": "1", "max_memory": "1Gi"}))) == 0
}

test_pointer if {
	resource_limits.pointer("spec.jobTemplate.spec.template.spec.containers[12]") == "/spec/jobTemplate/spec/template/spec/containers/12"
	resource_limits.pointer("spec.containers[0]") == "/spec/containers/0"
}
