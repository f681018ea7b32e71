# METADATA
# title: Require signatures and attestations
# description: >-
#   Every image is verified before it runs: ATTEST matches it against the configured trust policies, checks its
#   cosign signature against the policy's authorities and the in-toto attestations the policy requires (SLSA
#   provenance, SBOM, vulnerability scan), and gives the results to this policy as input.images[image].trust,
#   .signature and .attestations. An image no trust policy covers is denied, reported or allowed as the trust
#   configuration's no_match says. An image that could not be verified (registry unreachable, rate-limited,
#   offline check) is denied: ATTEST fails closed.
# custom:
#   name: require-attestation
#   severity: critical
#   mode: enforce
#   remediation: sign the image and attach the required attestations with cosign, or add a PolicyException
#   compliance:
#     soc2: [CC6.8, CC7.1, CC8.1]
#     hipaa: ["164.312(c)(1)"]
#     gdpr: [Art. 32]
package attest.library.require_attestation

import rego.v1

# subject names an image and the digest that was (or was to be) verified: gcr.io/x/app:1@sha256:….
subject(image, img) := sprintf("%s@%s", [image, img.digest]) if {
	object.get(img, "digest", "") != ""
	not contains(image, "@")
}

subject(image, img) := image if object.get(img, "digest", "") == ""

subject(image, _) := image if contains(image, "@")

parse_error(img) := img.error if img.error != ""

# images is input.images, or nothing when the caller gave none.
default images := {}

images := input.images if is_object(input.images)

# trust_of and signature_of are the verifier's results, undefined when it gave none. (Functions, because
# `not is_object(x.y)` is undefined, not true, when x.y is.)
trust_of(img) := img.trust if is_object(img.trust)

signature_of(img) := img.signature if is_object(img.signature)

no_match(trust) := object.get(trust, "no_match", "deny")

# Images that a trust policy covers, that were checked, whose signature verified, with every required attestation
# verified and no error are the common case: it is decided in one pass over the containers, and the rules below
# (problems, and the warning about uncovered images), which say what is wrong, run only when it does not hold. Each
# problem's test in require-attestation_test.rego fails if the pass holds where that problem exists.
violation contains v if {
	not all_hold
	some v in problems
}

all_hold if {
	every c in input.containers {
		image_holds(images[c.image])
	}
}

image_holds(img) if {
	object.get(img, "error", "") == ""
	img.trust.policy != ""
	img.trust.checked == true
	object.get(img.trust, "error", "") == ""
	img.signature.verified == true
	every pt in object.get(img.trust, "required_attestations", []) {
		verified_attestation(img, pt)
	}
}

# --- the image cannot be read ---

problems contains {"message": msg, "path": c.path, "fix": "write the image as a valid reference, e.g. registry.example.com/team/app:1.2.3"} if {
	some c in input.containers
	err := parse_error(images[c.image])
	msg := sprintf("image %q cannot be parsed: %s", [c.image, err])
}

# --- no verification ran ---

problems contains {"message": msg, "path": c.path, "fix": "ask your cluster administrators to check the ATTEST logs"} if {
	some c in input.containers
	img := object.get(images, c.image, {})
	not parse_error(img)
	not trust_of(img)
	msg := sprintf("image %q was not verified: ATTEST has no verification result for it", [c.image])
}

# --- no trust policy covers the image ---

uncovered contains c if {
	some c in input.containers
	not parse_error(images[c.image])
	trust := trust_of(images[c.image])
	object.get(trust, "policy", "") == ""
	object.get(trust, "configured", true) != false
}

problems contains {"message": msg, "path": c.path, "fix": uncovered_fix} if {
	some c in uncovered
	not no_match(images[c.image].trust) in {"audit", "allow"}
	msg := sprintf("no trust policy covers image %q, and images no trust policy covers are denied", [c.image])
}

warn contains {"message": msg, "path": c.path, "fix": uncovered_fix} if {
	not all_hold
	some c in uncovered
	no_match(images[c.image].trust) == "audit"
	msg := sprintf("no trust policy covers image %q, which is admitted because images no trust policy covers are only reported", [c.image])
}

uncovered_fix := "use an image a trust policy covers, or ask your cluster administrators to add a trust policy for it"

# --- no trust section at all (a first run) ---

# With no trust section configured no image can be verified. That is one fact about the configuration, not one
# per image, so it is said once per pod spec (once per object), at the pod spec's path. ATTEST runs this policy in
# audit then, unless its mode is set (config/firstrun.go): an explicit mode enforce denies.
violation contains {"message": "no image is verified: policies.yaml has no trust section", "path": object.get(c, "pod_path", ""), "fix": unconfigured_fix} if {
	some c in input.containers
	img := images[c.image]
	not parse_error(img)
	trust_of(img).configured == false
}

unconfigured_fix := "add trust.policies to policies.yaml naming your images and the keys or identities that sign them (README: Image trust)"

# --- covered, but not checked ---

covered contains [c, img] if {
	some c in input.containers
	img := images[c.image]
	not parse_error(img)
	object.get(trust_of(img), "policy", "") != ""
}

problems contains {"message": msg, "path": c.path, "fix": "ATTEST denies what it could not verify: retry when the registry answers"} if {
	some [c, img] in covered
	object.get(img.trust, "checked", false) != true
	reason := object.get(img.trust, "error", "")
	msg := not_checked_message(subject(c.image, img), img.trust.policy, reason)
}

not_checked_message(s, policy, reason) := sprintf("image %q could not be verified against trust policy %s: %s", [s, policy, reason]) if reason != ""

not_checked_message(s, policy, "") := sprintf("image %q could not be verified against trust policy %s", [s, policy])

# --- checked: the signature ---

checked contains [c, img] if {
	some [c, img] in covered
	img.trust.checked == true
}

problems contains {"message": msg, "path": c.path, "fix": fix} if {
	some [c, img] in checked
	object.get(signature_of(img), "verified", false) != true
	msg := signature_message(subject(c.image, img), img.trust.policy, object.get(img.signature, "error", ""))
	fix := sprintf("sign the image with cosign using a key or identity that trust policy %s accepts, or add a PolicyException", [img.trust.policy])
}

problems contains {"message": msg, "path": c.path, "fix": fix} if {
	some [c, img] in checked
	not signature_of(img)
	msg := signature_message(subject(c.image, img), img.trust.policy, "")
	fix := sprintf("sign the image with cosign using a key or identity that trust policy %s accepts, or add a PolicyException", [img.trust.policy])
}

signature_message(s, _, err) := sprintf("image %q has no valid signature: %s", [s, err]) if err != ""

signature_message(s, policy, "") := sprintf("image %q has no valid signature for trust policy %s", [s, policy])

# --- checked: each required attestation ---

problems contains {"message": msg, "path": c.path, "fix": fix} if {
	some [c, img] in checked
	some pt in object.get(img.trust, "required_attestations", [])
	not verified_attestation(img, pt)
	errors := attestation_errors(img, pt)
	count(errors) == 0
	msg := sprintf("attestation %s missing for image %q", [pt, subject(c.image, img)])
	fix := sprintf("attach it with cosign attest --type %s, signed by an authority of trust policy %s, or add a PolicyException", [pt, img.trust.policy])
}

problems contains {"message": msg, "path": c.path, "fix": fix} if {
	some [c, img] in checked
	some pt in object.get(img.trust, "required_attestations", [])
	not verified_attestation(img, pt)
	errors := attestation_errors(img, pt)
	count(errors) > 0
	msg := sprintf("image %q does not satisfy trust policy %s: %s", [subject(c.image, img), img.trust.policy, concat(", ", errors)])
	fix := sprintf("attach a valid %s attestation signed by an authority of trust policy %s, or add a PolicyException", [pt, img.trust.policy])
}

verified_attestation(img, pt) if {
	some a in object.get(img, "attestations", [])
	a.predicate_type == pt
	a.verified == true
	object.get(a, "error", "") == ""
}

# attestation_errors lists, sorted and without repeats, why the attestations of type pt failed: the verifier's
# words ("attestation https://slsa.dev/provenance/v1 missing", "… fails its policy: …"), which name the type.
attestation_errors(img, pt) := sort({msg |
	some a in object.get(img, "attestations", [])
	a.predicate_type == pt
	msg := attestation_error(a)
})

attestation_error(a) := a.error if object.get(a, "error", "") != ""

attestation_error(a) := sprintf("attestation %s not verified", [a.predicate_type]) if {
	object.get(a, "error", "") == ""
	object.get(a, "verified", false) != true
}

# --- checked, and anything else the verifier found wrong ---

# The verifier's trust.error names every reason an image fails its policy; the rules above report the reasons
# they know one by one. Should the verifier find another (a check this policy does not know), it is reported
# here rather than passed.
problems contains {"message": msg, "path": c.path} if {
	some [c, img] in checked
	reason := object.get(img.trust, "error", "")
	reason != ""
	object.get(signature_of(img), "verified", false) == true
	every pt in object.get(img.trust, "required_attestations", []) {
		verified_attestation(img, pt)
	}
	msg := sprintf("image %q does not satisfy trust policy %s: %s", [subject(c.image, img), img.trust.policy, reason])
}
