package attest.library.trusted_registries_test

import rego.v1

import data.attest.library.trusted_registries

# facts as the admission pipeline establishes them (matching itself is tested in Go, attestation/registries_test.go)
img(name, trusted) := {"name": name, "trusted_registry": trusted}

run(image, facts, registries) := v if {
	v := trusted_registries.violation with input as {
		"containers": [{"path": "spec.template.spec.containers[0]", "type": "container", "name": "app", "image": image}],
		"images": {image: facts},
		"params": {"trusted_registries": registries},
	}
}

test_trusted_image_allowed if {
	count(run("gcr.io/company/app:1", img("gcr.io/company/app", true), ["gcr.io/company"])) == 0
}

test_untrusted_image_denied_with_name_and_fix if {
	v := run("gcr.io/company-evil/app", img("gcr.io/company-evil/app", false), ["quay.io/x", "gcr.io/company"])
	v == {{
		"message": "image \"gcr.io/company-evil/app\" is from gcr.io/company-evil/app, which is not a trusted registry",
		"path": "spec.template.spec.containers[0]",
		"fix": "use an image under gcr.io/company, quay.io/x, or add a PolicyException",
	}}
}

test_unparseable_image_denied_with_error if {
	v := run("gcr.io/Company/app", {"error": "could not parse reference: gcr.io/Company/app"}, ["gcr.io"])
	v == {{
		"message": "image \"gcr.io/Company/app\" cannot be parsed: could not parse reference: gcr.io/Company/app",
		"path": "spec.template.spec.containers[0]",
		"fix": "write the image as a valid reference, e.g. registry.example.com/team/app:1.2.3",
	}}
}

test_image_without_facts_denied if {
	v := trusted_registries.violation with input as {
		"containers": [{"path": "spec.containers[0]", "image": "gcr.io/a/b"}],
		"images": {},
		"params": {"trusted_registries": ["gcr.io"]},
	}
	some f in v
	f.message == "image \"gcr.io/a/b\" cannot be admitted: ATTEST established no facts about it"
}

test_no_entries_denies_with_clear_message if {
	v := run("gcr.io/a/b", img("gcr.io/a/b", false), [])
	v == {{
		"message": "image \"gcr.io/a/b\" cannot be admitted: no trusted registries are configured",
		"path": "spec.template.spec.containers[0]",
		"fix": "list trusted registries in the trusted_registries parameter of trusted-registries",
	}}
}

test_each_untrusted_container_reported if {
	v := trusted_registries.violation with input as {
		"containers": [
			{"path": "spec.initContainers[0]", "image": "evil.io/a"},
			{"path": "spec.containers[0]", "image": "gcr.io/ok"},
			{"path": "spec.containers[1]", "image": "evil.io/a"},
		],
		"images": {"evil.io/a": img("evil.io/a", false), "gcr.io/ok": img("gcr.io/ok", true)},
		"params": {"trusted_registries": ["gcr.io"]},
	}
	{f.path | some f in v} == {"spec.initContainers[0]", "spec.containers[1]"}
}

test_long_registry_lists_are_summarised if {
	v := run("evil.io/a", img("evil.io/a", false), ["e.io", "d.io", "c.io", "b.io", "a.io"])
	some f in v
	f.fix == "use an image under a.io, b.io, c.io (or 2 more), or add a PolicyException"
}

test_empty_error_fact_is_no_error if {
	count(run("gcr.io/company/app:1", {"name": "gcr.io/company/app", "trusted_registry": true, "error": ""}, ["gcr.io/company"])) == 0
}
