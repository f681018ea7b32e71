package attest.library.require_receipt_test

import rego.v1

import data.attest.library.require_receipt

digest := "sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb"

other := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

app := "gcr.io/company/app:1.0"

proxy := "gcr.io/company/proxy:2"

annotation_path := "metadata.annotations[\"attest.continuu.ms/receipt\"]"

rewrite_fix := "remove the annotation and apply the Deployment again: ATTEST's mutating webhook writes the receipt"

entry(d) := {"digest": d, "signer": "release-key", "predicate_types": ["https://slsa.dev/provenance/v1"], "verified_at": "2026-11-25T10:00:00Z"}

good := {"version": 1, "images": {app: entry(digest), proxy: entry(other)}}

facts(d, verified) := {"digest": d, "signature": {"verified": verified, "signer": "release-key", "error": ""}}

verified_images := {app: facts(digest, true), proxy: facts(other, true)}

# a Deployment with two containers; receipt is the annotation's text, or null for none
deployment(receipt, imgs) := {
	"request": {"operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
	"resource": {"kind": "Deployment", "metadata": {"name": "web", "annotations": annotations(receipt)}},
	"containers": [
		{"path": "spec.template.spec.containers[0]", "type": "container", "name": "app", "image": app},
		{"path": "spec.template.spec.containers[1]", "type": "container", "name": "proxy", "image": proxy},
	],
	"images": imgs,
}

annotations(null) := {}

annotations(r) := {"attest.continuu.ms/receipt": r} if r != null

violations(doc) := v if {
	v := require_receipt.violation with input as doc
}

messages(doc) := {f.message | some f in violations(doc)}

test_valid_receipt_allowed if {
	count(violations(deployment(json.marshal(good), verified_images))) == 0
}

test_pod_without_receipt_allowed if {
	# the receipt is a Deployment's; Pods, StatefulSets and the rest are not judged
	some kind in ["Pod", "StatefulSet", "CronJob"]
	doc := object.union(deployment(null, verified_images), {"request": {"kind": {"kind": kind}}})
	count(violations(doc)) == 0
}

test_other_kinds_never_judged if {
	judged := {kind |
		some kind in ["Pod", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"]
		doc := object.union(deployment(null, verified_images), {"request": {"kind": {"kind": kind}}})
		count(violations(doc)) > 0
	}
	judged == set()
}

test_missing_receipt_denied if {
	violations(deployment(null, verified_images)) == {{
		"message": "the Deployment has no ATTEST receipt (annotation attest.continuu.ms/receipt)",
		"path": annotation_path,
	}}
}

test_receipt_not_json_denied if {
	violations(deployment("{images: app}", verified_images)) == {{"message": "the ATTEST receipt is not valid JSON", "path": annotation_path, "fix": rewrite_fix}}
}

test_receipt_not_an_object_denied if {
	messages(deployment("[1]", verified_images)) == {"the ATTEST receipt is not a JSON object"}
}

test_receipt_wrong_version_denied if {
	messages(deployment(json.marshal(object.union(good, {"version": 2})), verified_images)) == {"the ATTEST receipt has version 2, but ATTEST writes version 1"}
	messages(deployment(json.marshal(object.remove(good, ["version"])), verified_images)) == {"the ATTEST receipt has version null, but ATTEST writes version 1"}
	messages(deployment(json.marshal(object.union(good, {"version": "1"})), verified_images)) == {"the ATTEST receipt has version \"1\", but ATTEST writes version 1"}
}

test_receipt_without_images_denied if {
	messages(deployment(json.marshal({"version": 1}), verified_images)) == {"the ATTEST receipt has no images object"}
}

test_receipt_missing_an_image_denied if {
	r := {"version": 1, "images": {app: entry(digest)}}
	violations(deployment(json.marshal(r), verified_images)) == {{
		"message": "the ATTEST receipt does not name image \"gcr.io/company/proxy:2\"",
		"path": "spec.template.spec.containers[1]",
		"fix": rewrite_fix,
	}}
}

test_receipt_for_other_digest_denied if {
	# the image was rebuilt under the same tag after the receipt was written
	imgs := object.union(verified_images, {app: facts(other, true)})
	violations(deployment(json.marshal(good), imgs)) == {{
		"message": "the ATTEST receipt records sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb for image \"gcr.io/company/app:1.0\", but the image resolves to sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"path": "spec.template.spec.containers[0]",
		"fix": rewrite_fix,
	}}
}

test_hand_written_receipt_for_unverified_digest_denied if {
	imgs := object.union(verified_images, {app: facts(digest, false)})
	violations(deployment(json.marshal(good), imgs)) == {{
		"message": "the ATTEST receipt records sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb for image \"gcr.io/company/app:1.0\", but ATTEST has not verified a signature for that digest",
		"path": "spec.template.spec.containers[0]",
		"fix": "sign the image so ATTEST can verify it, then apply the Deployment again",
	}}
}

test_receipt_without_verification_facts_denied if {
	imgs := {app: {"digest": digest}, proxy: facts(other, true)}
	messages(deployment(json.marshal(good), imgs)) == {"the ATTEST receipt records sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb for image \"gcr.io/company/app:1.0\", but ATTEST has not verified a signature for that digest"}
}

test_receipt_when_no_digest_resolved_denied if {
	imgs := object.union(verified_images, {app: {"digest": "", "signature": {"verified": false}}})
	messages(deployment(json.marshal(good), imgs)) == {"the ATTEST receipt records sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb for image \"gcr.io/company/app:1.0\", but ATTEST resolved no digest for the image to compare it with"}
}

test_receipt_naming_another_signer_denied if {
	r := json.marshal(object.union(good, {"images": {app: {"signer": "someone-else"}}}))
	messages(deployment(r, verified_images)) == {"the ATTEST receipt names signer someone-else for image \"gcr.io/company/app:1.0\", but ATTEST verified signer release-key"}
}

test_malformed_entry_fields_each_reported if {
	r := json.marshal({"version": 1, "images": {
		app: {"digest": "sha256:abc", "signer": "", "predicate_types": "slsa", "verified_at": "yesterday"},
		proxy: "verified",
	}})
	violations(deployment(r, verified_images)) == {
		{"message": "the ATTEST receipt entry for image \"gcr.io/company/app:1.0\" records no valid digest (want sha256: and 64 hex digits)", "path": "spec.template.spec.containers[0]", "fix": rewrite_fix},
		{"message": "the ATTEST receipt entry for image \"gcr.io/company/app:1.0\" names no signer", "path": "spec.template.spec.containers[0]", "fix": rewrite_fix},
		{"message": "the ATTEST receipt entry for image \"gcr.io/company/app:1.0\" has no list of predicate types", "path": "spec.template.spec.containers[0]", "fix": rewrite_fix},
		{"message": "the ATTEST receipt entry for image \"gcr.io/company/app:1.0\" has no RFC 3339 verified_at time", "path": "spec.template.spec.containers[0]", "fix": rewrite_fix},
		{"message": "the ATTEST receipt entry for image \"gcr.io/company/proxy:2\" is not an object", "path": "spec.template.spec.containers[1]", "fix": rewrite_fix},
	}
}

# each field of an otherwise good entry, broken alone, is reported alone: the one-pass check of a good receipt
# must not let any of them through
test_each_entry_field_broken_alone_reported if {
	cases := [
		[{"digest": "sha256:abc"}, "records no valid digest (want sha256: and 64 hex digits)"],
		[{"signer": ""}, "names no signer"],
		[{"signer": 7}, "names no signer"],
		[{"predicate_types": "slsa"}, "has no list of predicate types"],
		[{"predicate_types": [1]}, "has no list of predicate types"],
		[{"verified_at": "yesterday"}, "has no RFC 3339 verified_at time"],
	]
	every c in cases {
		r := json.marshal(object.union(good, {"images": {app: object.union(entry(digest), c[0])}}))
		messages(deployment(r, verified_images)) == {sprintf("the ATTEST receipt entry for image \"gcr.io/company/app:1.0\" %s", [c[1]])}
	}
}

test_extra_receipt_entries_ignored if {
	r := json.marshal(object.union(good, {"images": {"gcr.io/company/old:0": entry(digest)}}))
	count(violations(deployment(r, verified_images))) == 0
}

test_init_container_images_must_be_named if {
	doc := object.union(deployment(json.marshal(good), verified_images), {"containers": [
		{"path": "spec.template.spec.initContainers[0]", "type": "init", "name": "migrate", "image": "gcr.io/company/migrate:3"},
		{"path": "spec.template.spec.containers[0]", "type": "container", "name": "app", "image": app},
	]})
	messages(doc) == {"the ATTEST receipt does not name image \"gcr.io/company/migrate:3\""}
}
