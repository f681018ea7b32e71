# METADATA
# title: Disallow the latest tag
# description: >-
#   An image named by the tag latest (written, or implied by naming no tag at all) runs whatever the tag points to
#   when a node pulls it: two replicas can run different code and a rollback cannot go back. An image pinned by
#   digest is fine even when it also names :latest, since the digest decides what runs. Judged on the parsed
#   reference ATTEST gives as input.images[image].tag and .digest, not on the text.
# custom:
#   name: disallow-latest-tag
#   severity: medium
#   mode: audit
#   remediation: name a version tag (app:1.4.2) or pin a digest (app@sha256:…)
#   compliance:
#     soc2: [CC8.1]
#     hipaa: ["164.312(c)(1)"]
package attest.library.disallow_latest_tag

import rego.v1

violation contains {"message": msg, "path": c.path} if {
	some c in input.containers
	msg := sprintf("image %q is not pinned: %s", [c.image, unpinned[c.image]])
}

# unpinned[image] says why a parsed image whose reference names no digest is not pinned: it uses the tag latest, or
# names no tag at all. Worked out once per image, however many containers run it.
unpinned[image] := reason if {
	some image, img in input.images
	object.get(img, "error", "") == ""
	names_digest(img) == false
	reason := unpinned_reasons[object.get(img, "tag", "")]
}

unpinned_reasons := {
	"latest": "it uses the tag latest, which can point to a different image on every pull",
	"": "it names neither a tag nor a digest",
}

# names_digest is whether the image's reference names a digest. Once the verifier has run, the digest fact is the
# digest a tag resolved to, so the parsed reference decides: "@sha256:…" in it pins, a resolved tag does not. Facts
# without the parsed reference: the digest fact is the reference's own.
names_digest(img) := true if contains(img.reference, "@")

else := false if img.reference

else := object.get(img, "digest", "") != ""
