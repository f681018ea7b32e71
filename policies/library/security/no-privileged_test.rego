package attest.library.no_privileged_test

import rego.v1

import data.attest.library.no_privileged

container(path, type, sc) := {"path": path, "type": type, "name": "app", "image": "gcr.io/x/app:1", "securityContext": sc}

test_privileged_container_denied if {
	v := no_privileged.violation with input as {"containers": [container("spec.containers[0]", "container", {"privileged": true})]}
	v == {{"message": "privileged containers are not allowed", "path": "spec.containers[0]"}}
}

test_privileged_init_container_in_cronjob_denied if {
	path := "spec.jobTemplate.spec.template.spec.initContainers[1]"
	v := no_privileged.violation with input as {"containers": [
		container("spec.jobTemplate.spec.template.spec.initContainers[0]", "init", {}),
		container(path, "init", {"privileged": true}),
	]}
	v == {{"message": "privileged containers are not allowed", "path": path}}
}

test_privileged_ephemeral_container_denied if {
	v := no_privileged.violation with input as {"containers": [container("spec.ephemeralContainers[0]", "ephemeral", {"privileged": true})]}
	count(v) == 1
}

test_every_privileged_container_reported if {
	v := no_privileged.violation with input as {"containers": [
		container("spec.template.spec.containers[0]", "container", {"privileged": true}),
		container("spec.template.spec.containers[1]", "container", {"privileged": false}),
		container("spec.template.spec.containers[2]", "container", {"privileged": true}),
	]}
	{x.path | some x in v} == {"spec.template.spec.containers[0]", "spec.template.spec.containers[2]"}
}

test_unprivileged_allowed if {
	v := no_privileged.violation with input as {"containers": [
		container("spec.containers[0]", "container", {"privileged": false}),
		container("spec.containers[1]", "container", null),
		container("spec.containers[2]", "container", {"runAsNonRoot": true}),
	]}
	count(v) == 0
}

test_no_containers_allowed if {
	v := no_privileged.violation with input as {"containers": []}
	count(v) == 0
}
