package attest.library.trusted_registries_test

import rego.v1

import data.attest.library.trusted_registries

# facts as the admission pipeline establishes them from go-containerregistry's parse
img(registry, repository) := {"registry": registry, "repository": repository}

run(image, facts, registries) := v if {
	v := trusted_registries.violation with input as {
		"containers": [{"path": "spec.template.spec.containers[0]", "type": "container", "name": "app", "image": image}],
		"images": {image: facts},
		"params": {"trusted_registries": registries},
	}
}

test_registry_entry_allows_any_repository if {
	count(run("gcr.io/company/app:1", img("gcr.io", "company/app"), ["gcr.io/"])) == 0
}

test_repository_prefix_allows_below_it if {
	count(run("gcr.io/company/team/app", img("gcr.io", "company/team/app"), ["gcr.io/company"])) == 0
}

test_repository_prefix_equal_allowed if {
	count(run("gcr.io/company", img("gcr.io", "company"), ["gcr.io/company"])) == 0
}

test_segment_bypass_denied if {
	v := run("gcr.io/company-evil/app", img("gcr.io", "company-evil/app"), ["gcr.io/company"])
	v == {{
		"message": "image \"gcr.io/company-evil/app\" is from gcr.io/company-evil/app, which is not a trusted registry",
		"path": "spec.template.spec.containers[0]",
		"fix": "use an image under gcr.io/company, or add a PolicyException",
	}}
}

test_host_suffix_bypass_denied if {
	count(run("gcr.io.evil.com/company/app", img("gcr.io.evil.com", "company/app"), ["gcr.io/company"])) == 1
}

test_trailing_slash_changes_nothing if {
	count(run("gcr.io/company/app", img("gcr.io", "company/app"), ["gcr.io/company/"])) == 0
	count(run("gcr.io/company-evil/app", img("gcr.io", "company-evil/app"), ["gcr.io/company/"])) == 1
}

test_docker_hub_entry_normalised if {
	count(run("nginx", img("index.docker.io", "library/nginx"), ["docker.io/library"])) == 0
	count(run("nginx", img("index.docker.io", "library/nginx"), ["index.docker.io/library"])) == 0
	count(run("evil/nginx", img("index.docker.io", "evil/nginx"), ["docker.io/library"])) == 1
}

test_entry_host_case_insensitive if {
	count(run("gcr.io/company/app", img("gcr.io", "company/app"), ["GCR.IO/company"])) == 0
}

test_registry_with_port if {
	count(run("localhost:5000/x", img("localhost:5000", "x"), ["localhost:5000"])) == 0
	count(run("localhost:5001/x", img("localhost:5001", "x"), ["localhost:5000"])) == 1
}

test_unparseable_image_denied_with_error if {
	v := run("gcr.io/Company/app", {"error": "could not parse reference: gcr.io/Company/app"}, ["gcr.io"])
	some f in v
	f.message == "image \"gcr.io/Company/app\" cannot be parsed: could not parse reference: gcr.io/Company/app"
}

test_image_without_facts_denied if {
	v := trusted_registries.violation with input as {
		"containers": [{"path": "spec.containers[0]", "image": "gcr.io/a/b"}],
		"images": {},
		"params": {"trusted_registries": ["gcr.io"]},
	}
	count(v) == 1
}

test_no_entries_denies_with_clear_message if {
	v := run("gcr.io/a/b", img("gcr.io", "a/b"), [])
	some f in v
	f.message == "image \"gcr.io/a/b\" cannot be admitted: no trusted registries are configured"
}

test_each_untrusted_container_reported if {
	v := trusted_registries.violation with input as {
		"containers": [
			{"path": "spec.initContainers[0]", "image": "evil.io/a"},
			{"path": "spec.containers[0]", "image": "gcr.io/ok"},
			{"path": "spec.containers[1]", "image": "evil.io/a"},
		],
		"images": {"evil.io/a": img("evil.io", "a"), "gcr.io/ok": img("gcr.io", "ok")},
		"params": {"trusted_registries": ["gcr.io"]},
	}
	{f.path | some f in v} == {"spec.initContainers[0]", "spec.containers[1]"}
}
