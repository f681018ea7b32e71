# METADATA
# title: Require an ATTEST receipt
# description: >-
#   Deployments carry the verification receipt ATTEST's mutating webhook writes in the annotation
#   attest.continuu.ms/receipt: JSON of the form {"version": 1, "images": {"<image as written>": {"digest",
#   "signer", "predicate_types", "verified_at"}}}. The receipt must name every container's image with the digest
#   ATTEST resolved for it, and ATTEST must have verified that digest's signature in this admission, so a
#   receipt written by hand, copied from another object or left over from an older image does not pass.
# custom:
#   name: require-receipt
#   severity: high
#   mode: audit
#   remediation: apply the Deployment through ATTEST's mutating webhook, which writes the receipt, or add a PolicyException
#   compliance:
#     soc2: [CC7.2, CC8.1]
#     hipaa: ["164.312(b)", "164.312(c)(1)"]
package attest.library.require_receipt

import rego.v1

annotation := "attest.continuu.ms/receipt"

annotation_path := sprintf("metadata.annotations[%q]", [annotation])

applies if input.request.kind.kind == "Deployment"

raw := input.resource.metadata.annotations[annotation]

# Parsed once; json.unmarshal is undefined for text that is not JSON.
receipt := json.unmarshal(raw) if is_string(raw)

default images := {}

images := input.images if is_object(input.images)

# A receipt that agrees with this admission in every point below is the common case: it is decided in one pass over
# the containers, and the rules after it (problems), which say what is wrong, run only when it does not hold. Each
# problem's test in require-receipt_test.rego fails if the pass holds where that problem exists.
violation contains v if {
	not receipt_holds
	some v in problems
}

receipt_holds if not applies

receipt_holds if {
	applies
	count(shape_problems) == 0
	every c in input.containers {
		entry_holds(entries[c.image], object.get(images, c.image, {}))
	}
}

entry_holds(entry, img) if {
	valid_digest(entry)
	is_string(entry.signer)
	entry.signer != ""
	is_array(entry.predicate_types)
	every t in entry.predicate_types {
		is_string(t)
	}
	time.parse_rfc3339_ns(entry.verified_at)
	img.digest == entry.digest
	img.signature.verified == true
	object.get(img.signature, "signer", "") in {"", entry.signer}
}

# --- the receipt as a whole ---

problems contains {"message": "the Deployment has no ATTEST receipt (annotation attest.continuu.ms/receipt)", "path": annotation_path} if {
	applies
	not raw
}

problems contains {"message": "the ATTEST receipt is not valid JSON", "path": annotation_path, "fix": rewrite_fix} if {
	applies
	raw
	not receipt
}

problems contains {"message": msg, "path": annotation_path, "fix": rewrite_fix} if {
	applies
	some msg in shape_problems
}

shape_problems contains "the ATTEST receipt is not a JSON object" if type_name(receipt) != "object"

shape_problems contains msg if {
	is_object(receipt)
	object.get(receipt, "version", null) != 1
	msg := sprintf("the ATTEST receipt has version %s, but ATTEST writes version 1", [json.marshal(object.get(receipt, "version", null))])
}

shape_problems contains "the ATTEST receipt has no images object" if {
	is_object(receipt)
	not has_images(receipt)
}

# (A function, because `not is_object(x.y)` is undefined, not true, when x.y is.)
has_images(r) if is_object(r.images)

rewrite_fix := "remove the annotation and apply the Deployment again: ATTEST's mutating webhook writes the receipt"

# entries are the receipt's images, when the receipt has the right shape.
entries := receipt.images if {
	applies
	count(shape_problems) == 0
}

# --- each container's image ---

problems contains {"message": msg, "path": c.path, "fix": rewrite_fix} if {
	some c in input.containers
	is_object(entries)
	not has_key(entries, c.image)
	msg := sprintf("the ATTEST receipt does not name image %q", [c.image])
}

problems contains {"message": msg, "path": c.path, "fix": rewrite_fix} if {
	some c in input.containers
	entry := entries[c.image]
	some problem in entry_problems(entry)
	msg := sprintf("the ATTEST receipt entry for image %q %s", [c.image, problem])
}

has_key(obj, key) if _ = obj[key]

entry_problems(entry) := ["is not an object"] if not is_object(entry)

entry_problems(entry) := [p |
	some check in [
		digest_problem(entry),
		signer_problem(entry),
		predicate_types_problem(entry),
		verified_at_problem(entry),
	]
	some p in check
] if is_object(entry)

digest_pattern := `^sha256:[0-9a-f]{64}$`

valid_digest(entry) if regex.match(digest_pattern, entry.digest)

digest_problem(entry) := [] if valid_digest(entry)

digest_problem(entry) := ["records no valid digest (want sha256: and 64 hex digits)"] if not valid_digest(entry)

signer_problem(entry) := [] if {
	is_string(entry.signer)
	entry.signer != ""
}

else := ["names no signer"]

predicate_types_problem(entry) := [] if {
	is_array(entry.predicate_types)
	every t in entry.predicate_types {
		is_string(t)
	}
}

else := ["has no list of predicate types"]

verified_at_problem(entry) := [] if time.parse_rfc3339_ns(entry.verified_at)

else := ["has no RFC 3339 verified_at time"]

# --- the receipt against what ATTEST verified in this admission ---

# resolved_digest(image) is object.get(images, [image, "digest"], "") and signature_verified(image)
# object.get(images, [image, "signature", "verified"], false), read as references rather than through a path
# array built for every call.
resolved_digest(image) := d if {
	d := images[image].digest
} else := ""

signature_verified(image) := v if {
	v := images[image].signature.verified
} else := false

problems contains {"message": msg, "path": c.path, "fix": rewrite_fix} if {
	some c in input.containers
	entry := entries[c.image]
	valid_digest(entry)
	resolved := resolved_digest(c.image)
	resolved != ""
	resolved != entry.digest
	msg := sprintf("the ATTEST receipt records %s for image %q, but the image resolves to %s", [entry.digest, c.image, resolved])
}

problems contains {"message": msg, "path": c.path, "fix": rewrite_fix} if {
	some c in input.containers
	entry := entries[c.image]
	valid_digest(entry)
	resolved_digest(c.image) == ""
	msg := sprintf("the ATTEST receipt records %s for image %q, but ATTEST resolved no digest for the image to compare it with", [entry.digest, c.image])
}

problems contains {"message": msg, "path": c.path, "fix": "sign the image so ATTEST can verify it, then apply the Deployment again"} if {
	some c in input.containers
	entry := entries[c.image]
	valid_digest(entry)
	resolved_digest(c.image) == entry.digest
	signature_verified(c.image) != true
	msg := sprintf("the ATTEST receipt records %s for image %q, but ATTEST has not verified a signature for that digest", [entry.digest, c.image])
}

problems contains {"message": msg, "path": c.path, "fix": rewrite_fix} if {
	some c in input.containers
	entry := entries[c.image]
	signature_verified(c.image) == true
	signer := object.get(images, [c.image, "signature", "signer"], "")
	signer != ""
	is_string(entry.signer)
	entry.signer != ""
	entry.signer != signer
	msg := sprintf("the ATTEST receipt names signer %s for image %q, but ATTEST verified signer %s", [entry.signer, c.image, signer])
}
