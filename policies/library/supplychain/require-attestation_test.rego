package attest.library.require_attestation_test

import rego.v1

import data.attest.library.require_attestation

digest := "sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb"

slsa := "https://slsa.dev/provenance/v1"

spdx := "https://spdx.dev/Document"

image := "gcr.io/company/app:1.0"

# verified is what the verifier reports for an image that passes: covered by trust policy "company", signed by
# its authority, with the one attestation the policy requires.
verified := {
	"name": "gcr.io/company/app", "registry": "gcr.io", "repository": "company/app", "tag": "1.0",
	"digest": digest, "trusted_registry": true,
	"trust": {"policy": "company", "no_match": "deny", "checked": true, "error": "", "required_attestations": [slsa]},
	"signature": {"verified": true, "signer": "release-key", "authority": "release-key", "error": ""},
	"attestations": [{"predicate_type": slsa, "verified": true, "signer": "release-key", "predicate": {"buildType": "x"}, "error": ""}],
}

# with_facts merges patch into verified (objects recursively); with_trust replaces the trust result whole.
with_facts(patch) := object.union(verified, patch)

with_trust(trust) := object.union(object.remove(verified, ["trust"]), {"trust": trust})

pod_path := "spec.containers[0]"

deploy_path := "spec.template.spec.containers[0]"

# input of one object with one container; kind and path as the admission pipeline gives them
one(kind, path, img, facts) := {
	"request": {"operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": kind}},
	"containers": [{"path": path, "type": "container", "name": "app", "image": img}],
	"images": {img: facts},
}

violations(doc) := v if {
	v := require_attestation.violation with input as doc
}

warnings(doc) := w if {
	w := require_attestation.warn with input as doc
}

subject := sprintf("%s@%s", [image, digest])

# --- allowed ---

test_verified_image_allowed_in_every_kind if {
	some [kind, path] in [
		["Pod", pod_path],
		["Deployment", deploy_path],
		["StatefulSet", deploy_path],
		["DaemonSet", deploy_path],
		["Job", deploy_path],
		["CronJob", "spec.jobTemplate.spec.template.spec.containers[0]"],
	]
	doc := one(kind, path, image, verified)
	count(violations(doc)) == 0
	count(warnings(doc)) == 0
}

test_verified_in_every_kind_really_every if {
	# the test above passes when one kind passes; this one demands all six
	kinds := {kind |
		some [kind, path] in [["Pod", pod_path], ["Deployment", deploy_path], ["CronJob", "spec.jobTemplate.spec.template.spec.containers[0]"]]
		count(violations(one(kind, path, image, verified))) == 0
	}
	kinds == {"Pod", "Deployment", "CronJob"}
}

test_uncovered_image_allowed_when_no_match_allow if {
	facts := with_facts({"trust": {"policy": "", "no_match": "allow", "checked": false, "required_attestations": []}})
	doc := one("Pod", pod_path, "docker.io/library/busybox:1.36", facts)
	count(violations(doc)) == 0
	count(warnings(doc)) == 0
}

test_one_valid_attestation_among_failing_ones_is_enough if {
	facts := with_facts({"attestations": [
		{"predicate_type": slsa, "verified": false, "error": "signature by an unknown key"},
		{"predicate_type": slsa, "verified": true, "signer": "release-key", "error": ""},
	]})
	count(violations(one("Deployment", deploy_path, image, facts))) == 0
}

test_no_required_attestations_needs_only_the_signature if {
	facts := object.union(with_trust(object.union(verified.trust, {"required_attestations": []})), {"attestations": []})
	count(violations(one("Pod", pod_path, image, facts))) == 0
}

# --- the image or its facts are missing ---

test_no_verification_result_denied if {
	doc := one("Deployment", deploy_path, image, object.remove(verified, ["trust", "signature", "attestations"]))
	violations(doc) == {{
		"message": "image \"gcr.io/company/app:1.0\" was not verified: ATTEST has no verification result for it",
		"path": deploy_path,
		"fix": "ask your cluster administrators to check the ATTEST logs",
	}}
}

test_no_facts_at_all_denied if {
	doc := {"containers": [{"path": pod_path, "image": image}], "images": {}}
	{f.message | some f in violations(doc)} == {"image \"gcr.io/company/app:1.0\" was not verified: ATTEST has no verification result for it"}
}

test_null_trust_is_no_result if {
	doc := one("Pod", pod_path, image, object.union(verified, {"trust": null}))
	{f.message | some f in violations(doc)} == {"image \"gcr.io/company/app:1.0\" was not verified: ATTEST has no verification result for it"}
}

test_unparseable_image_denied if {
	doc := one("Pod", pod_path, "gcr.io/Company/app", {"error": "could not parse reference: gcr.io/Company/app"})
	violations(doc) == {{
		"message": "image \"gcr.io/Company/app\" cannot be parsed: could not parse reference: gcr.io/Company/app",
		"path": pod_path,
		"fix": "write the image as a valid reference, e.g. registry.example.com/team/app:1.2.3",
	}}
}

# --- no trust policy covers the image ---

uncovered(no_match) := with_facts({"trust": {"policy": "", "no_match": no_match, "checked": false, "required_attestations": []}})

test_uncovered_image_denied_when_no_match_deny if {
	doc := one("Deployment", deploy_path, "quay.io/other/tool:2", uncovered("deny"))
	violations(doc) == {{
		"message": "no trust policy covers image \"quay.io/other/tool:2\", and images no trust policy covers are denied",
		"path": deploy_path,
		"fix": "use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it",
	}}
	count(warnings(doc)) == 0
}

test_uncovered_image_without_no_match_fails_closed if {
	doc := one("Pod", pod_path, image, with_trust({"policy": "", "checked": false}))
	{f.message | some f in violations(doc)} == {"no trust policy covers image \"gcr.io/company/app:1.0\", and images no trust policy covers are denied"}
}

test_uncovered_image_warned_when_no_match_audit if {
	doc := one("Pod", pod_path, "quay.io/other/tool:2", uncovered("audit"))
	count(violations(doc)) == 0
	warnings(doc) == {{
		"message": "no trust policy covers image \"quay.io/other/tool:2\", which is admitted because images no trust policy covers are only reported",
		"path": pod_path,
		"fix": "use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it",
	}}
}

# --- no trust section at all (a first run) ---

unconfigured := with_facts({"trust": {"policy": "", "no_match": "deny", "configured": false, "checked": false, "error": "no trust policy covers quay.io/other/tool", "required_attestations": []}})

unconfigured_finding := {
	"message": "no image is verified: policies.yaml has no trust section",
	"path": "spec.template.spec",
	"fix": "add trust.policies to policies.yaml naming your images and the keys or identities that sign them (README: Image trust)",
}

test_no_trust_section_reported_once_per_object if {
	doc := {
		"request": {"operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
		"containers": [
			{"path": deploy_path, "pod_path": "spec.template.spec", "type": "container", "name": "app", "image": "quay.io/other/tool:2"},
			{"path": "spec.template.spec.containers[1]", "pod_path": "spec.template.spec", "type": "container", "name": "side", "image": "busybox:1.36"},
			{"path": "spec.template.spec.initContainers[0]", "pod_path": "spec.template.spec", "type": "init", "name": "init", "image": "quay.io/other/tool:2"},
		],
		"images": {"quay.io/other/tool:2": unconfigured, "busybox:1.36": unconfigured},
	}
	violations(doc) == {unconfigured_finding}
	count(warnings(doc)) == 0
}

test_no_trust_section_with_no_match_audit_still_once if {
	doc := one("Pod", pod_path, "quay.io/other/tool:2", with_facts({"trust": {"policy": "", "no_match": "audit", "configured": false, "checked": false, "required_attestations": []}}))
	violations(doc) == {object.union(unconfigured_finding, {"path": ""})}
	count(warnings(doc)) == 0
}

test_trust_section_configured_keeps_per_image_denials if {
	doc := one("Pod", pod_path, "quay.io/other/tool:2", with_facts({"trust": {"policy": "", "no_match": "deny", "configured": true, "checked": false, "required_attestations": []}}))
	{f.message | some f in violations(doc)} == {"no trust policy covers image \"quay.io/other/tool:2\", and images no trust policy covers are denied"}
}

test_unparsable_image_without_trust_section_names_the_image if {
	doc := one("Pod", pod_path, "gcr.io/Company/app", {"error": "could not parse reference: gcr.io/Company/app"})
	{f.message | some f in violations(doc)} == {"image \"gcr.io/Company/app\" cannot be parsed: could not parse reference: gcr.io/Company/app"}
}

# --- covered but not checked ---

test_unreachable_registry_denied_with_reason if {
	facts := with_facts({"trust": {"checked": false, "error": "registry gcr.io did not answer within 2s"}})
	violations(one("Deployment", deploy_path, image, facts)) == {{
		"message": "image \"gcr.io/company/app:1.0@sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb\" could not be verified against trust policy company: registry gcr.io did not answer within 2s",
		"path": deploy_path,
		"fix": "ATTEST denies what it could not verify: retry when the registry answers",
	}}
}

test_offline_check_denied if {
	facts := with_facts({"digest": "", "trust": {"checked": false, "error": "not checked (--offline)"}})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {"image \"gcr.io/company/app:1.0\" could not be verified against trust policy company: not checked (--offline)"}
}

test_not_checked_without_reason_denied if {
	facts := with_trust({"policy": "company", "checked": false, "required_attestations": [slsa]})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q could not be verified against trust policy company", [subject])}
}

test_checked_missing_means_not_checked if {
	facts := with_trust({"policy": "company", "no_match": "deny", "error": "", "required_attestations": [slsa]})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q could not be verified against trust policy company", [subject])}
}

# --- the signature ---

test_unsigned_image_denied_with_verifier_error if {
	facts := with_facts({"signature": {"verified": false, "signer": "", "error": "no signature from authority 'release-key'"}})
	violations(one("StatefulSet", deploy_path, image, facts)) == {{
		"message": sprintf("image %q has no valid signature: no signature from authority 'release-key'", [subject]),
		"path": deploy_path,
		"fix": "sign the image with cosign using a key or identity that trust policy company accepts, or add a PolicyException",
	}}
}

test_missing_signature_result_denied if {
	facts := object.remove(verified, ["signature"])
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q has no valid signature for trust policy company", [subject])}
}

test_signature_without_verified_flag_denied if {
	facts := object.union(object.remove(verified, ["signature"]), {"signature": {"signer": "", "error": ""}})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q has no valid signature for trust policy company", [subject])}
}

# --- attestations ---

test_missing_attestation_denied_naming_type_and_digest if {
	facts := object.union(object.remove(verified, ["attestations"]), {"attestations": []})
	violations(one("Job", deploy_path, image, facts)) == {{
		"message": "attestation https://slsa.dev/provenance/v1 missing for image \"gcr.io/company/app:1.0@sha256:9b2a0e0c8ad1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb\"",
		"path": deploy_path,
		"fix": "attach it with cosign attest --type https://slsa.dev/provenance/v1, signed by an authority of trust policy company, or add a PolicyException",
	}}
}

test_invalid_attestation_denied_naming_error if {
	facts := with_facts({"attestations": [{"predicate_type": slsa, "verified": false, "signer": "", "error": "predicate check failed: builder.id is not https://ci.company.com"}]})
	violations(one("DaemonSet", deploy_path, image, facts)) == {{
		"message": sprintf("image %q does not satisfy trust policy company: predicate check failed: builder.id is not https://ci.company.com", [subject]),
		"path": deploy_path,
		"fix": "attach a valid https://slsa.dev/provenance/v1 attestation signed by an authority of trust policy company, or add a PolicyException",
	}}
}

test_unverified_attestation_without_error_denied if {
	facts := with_facts({"attestations": [{"predicate_type": slsa, "verified": false}]})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q does not satisfy trust policy company: attestation https://slsa.dev/provenance/v1 not verified", [subject])}
}

test_verified_attestation_with_error_is_not_valid if {
	facts := with_facts({"attestations": [{"predicate_type": slsa, "verified": true, "error": "expired certificate"}]})
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {sprintf("image %q does not satisfy trust policy company: expired certificate", [subject])}
}

test_each_missing_required_type_reported if {
	facts := with_facts({"trust": {"required_attestations": [slsa, spdx, "https://cosign.sigstore.dev/attestation/vuln/v1"]}, "attestations": [
		{"predicate_type": slsa, "verified": true, "error": ""},
		{"predicate_type": spdx, "verified": false, "error": "no matching signatures"},
	]})
	{f.message | some f in violations(one("Deployment", deploy_path, image, facts))} == {
		sprintf("image %q does not satisfy trust policy company: no matching signatures", [subject]),
		sprintf("attestation https://cosign.sigstore.dev/attestation/vuln/v1 missing for image %q", [subject]),
	}
}

test_signature_and_attestation_failures_both_reported if {
	facts := with_facts({"signature": {"verified": false, "error": "no signature from authority 'release-key'"}, "attestations": []})
	count(violations(one("Pod", pod_path, image, facts))) == 2
}

# --- subjects and containers ---

test_image_written_with_digest_named_once if {
	pinned := sprintf("gcr.io/company/app@%s", [digest])
	facts := with_facts({"signature": {"verified": false, "error": "no signature from authority 'release-key'"}})
	{f.message | some f in violations(one("Pod", pod_path, pinned, facts))} == {sprintf("image %q has no valid signature: no signature from authority 'release-key'", [pinned])}
}

test_every_container_of_a_cronjob_reported if {
	bad := with_facts({"signature": {"verified": false, "error": "no signature"}})
	doc := {
		"request": {"operation": "CREATE", "kind": {"kind": "CronJob"}},
		"containers": [
			{"path": "spec.jobTemplate.spec.template.spec.initContainers[0]", "type": "init", "name": "init", "image": "gcr.io/company/bad:1"},
			{"path": "spec.jobTemplate.spec.template.spec.containers[0]", "type": "container", "name": "app", "image": image},
			{"path": "spec.jobTemplate.spec.template.spec.containers[1]", "type": "container", "name": "side", "image": "gcr.io/company/bad:1"},
		],
		"images": {image: verified, "gcr.io/company/bad:1": bad},
	}
	{f.path | some f in violations(doc)} == {"spec.jobTemplate.spec.template.spec.initContainers[0]", "spec.jobTemplate.spec.template.spec.containers[1]"}
}

# --- the facts as attestation.Verifier writes them (attestation/facts.go) ---

# the verifier lists every required type, with its own words for what went wrong, and joins them in trust.error
test_verifier_missing_attestation_denied if {
	facts := object.union(with_trust(object.union(verified.trust, {"error": "attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)"})), {"attestations": [
		{"predicate_type": slsa, "verified": false, "signer": "", "predicate": null, "error": "attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)"},
	]})
	violations(one("Deployment", deploy_path, image, facts)) == {{
		"message": sprintf("image %q does not satisfy trust policy company: attestation https://slsa.dev/provenance/v1 missing (found https://spdx.dev/Document)", [subject]),
		"path": deploy_path,
		"fix": "attach a valid https://slsa.dev/provenance/v1 attestation signed by an authority of trust policy company, or add a PolicyException",
	}}
}

test_verifier_unparseable_image_reported_once if {
	# the admission layer's parse error and the verifier's facts together
	facts := {
		"error": "could not parse reference: gcr.io/Company/app",
		"digest": "",
		"trust": {"policy": "", "no_match": "deny", "checked": false, "error": "could not parse reference: gcr.io/Company/app", "required_attestations": []},
		"signature": {"verified": false, "signer": "", "authority": "", "error": ""},
		"attestations": [],
	}
	{f.message | some f in violations(one("Pod", pod_path, "gcr.io/Company/app", facts))} == {"image \"gcr.io/Company/app\" cannot be parsed: could not parse reference: gcr.io/Company/app"}
}

test_verifier_pending_attestations_when_registry_down if {
	facts := object.union(
		with_trust({"policy": "company", "no_match": "deny", "checked": false, "error": "rate-limited by gcr.io", "required_attestations": [slsa]}),
		{"digest": "", "signature": {"verified": false, "error": ""}, "attestations": [{"predicate_type": slsa, "verified": false, "error": ""}]},
	)
	{f.message | some f in violations(one("Pod", pod_path, image, facts))} == {"image \"gcr.io/company/app:1.0\" could not be verified against trust policy company: rate-limited by gcr.io"}
}

test_unknown_verifier_failure_denied if {
	facts := with_trust(object.union(verified.trust, {"error": "digest mismatch between manifest and signature"}))
	violations(one("Pod", pod_path, image, facts)) == {{
		"message": sprintf("image %q does not satisfy trust policy company: digest mismatch between manifest and signature", [subject]),
		"path": pod_path,
	}}
}
