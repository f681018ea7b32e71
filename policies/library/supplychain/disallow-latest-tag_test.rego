package attest.library.disallow_latest_tag_test

import rego.v1

import data.attest.library.disallow_latest_tag

# facts as ATTEST establishes them: "nginx" parses to tag latest, "app@sha256:…" to no tag
facts(tag, digest) := {"name": "docker.io/library/app", "tag": tag, "digest": digest, "trusted_registry": true}

digest := "sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"

run(path, image, img) := v if {
	v := disallow_latest_tag.violation with input as {
		"containers": [{"path": path, "type": "container", "name": "app", "image": image}],
		"images": {image: img},
	}
}

test_pod_latest_tag_denied if {
	v := run("spec.containers[0]", "nginx:latest", facts("latest", ""))
	v == {{
		"message": "image \"nginx:latest\" is not pinned: it uses the tag latest, which can point to a different image on every pull",
		"path": "spec.containers[0]",
	}}
}

test_deployment_untagged_image_denied if {
	# no tag and no digest: the reference defaults to latest
	v := run("spec.template.spec.containers[0]", "nginx", facts("latest", ""))
	v == {{
		"message": "image \"nginx\" is not pinned: it uses the tag latest, which can point to a different image on every pull",
		"path": "spec.template.spec.containers[0]",
	}}
}

test_cronjob_init_container_latest_denied if {
	path := "spec.jobTemplate.spec.template.spec.initContainers[0]"
	v := run(path, "gcr.io/x/migrate:latest", facts("latest", ""))
	{f.path | some f in v} == {path}
}

test_no_tag_no_digest_fact_denied if {
	v := run("spec.containers[0]", "weird", facts("", ""))
	v == {{"message": "image \"weird\" is not pinned: it names neither a tag nor a digest", "path": "spec.containers[0]"}}
}

test_version_tag_allowed if {
	count(run("spec.containers[0]", "nginx:1.27", facts("1.27", ""))) == 0
	count(run("spec.template.spec.containers[0]", "nginx:1.27", facts("1.27", ""))) == 0
}

test_digest_pinned_latest_allowed if {
	image := sprintf("nginx:latest@%s", [digest])
	count(run("spec.template.spec.containers[0]", image, facts("latest", digest))) == 0
}

test_digest_only_allowed if {
	image := sprintf("nginx@%s", [digest])
	count(run("spec.containers[0]", image, facts("", digest))) == 0
}

test_tag_named_like_latest_judged_on_facts if {
	# the text says latest-ish, the parsed tag does not: allowed
	count(run("spec.containers[0]", "gcr.io/latest/app:v1-latest", facts("v1-latest", ""))) == 0
}

test_unparseable_image_left_to_trusted_registries if {
	count(run("spec.containers[0]", "Bad:Image", {"error": "could not parse reference"})) == 0
}

test_each_container_reported if {
	v := disallow_latest_tag.violation with input as {
		"containers": [
			{"path": "spec.template.spec.containers[0]", "image": "nginx"},
			{"path": "spec.template.spec.containers[1]", "image": "redis:7"},
			{"path": "spec.template.spec.containers[2]", "image": "nginx"},
		],
		"images": {"nginx": facts("latest", ""), "redis:7": facts("7", "")},
	}
	{f.path | some f in v} == {"spec.template.spec.containers[0]", "spec.template.spec.containers[2]"}
}

test_resolved_digest_does_not_pin_latest if {
	# the verifier resolved the tag to a digest: the reference still names latest, which can move
	img := object.union(facts("latest", digest), {"reference": "index.docker.io/library/nginx:latest"})
	v := run("spec.template.spec.containers[0]", "nginx:latest", img)
	{f.path | some f in v} == {"spec.template.spec.containers[0]"}
}

test_digest_in_reference_pins if {
	image := sprintf("nginx:latest@%s", [digest])
	img := object.union(facts("latest", digest), {"reference": sprintf("index.docker.io/library/nginx:latest@%s", [digest])})
	count(run("spec.template.spec.containers[0]", image, img)) == 0
}
