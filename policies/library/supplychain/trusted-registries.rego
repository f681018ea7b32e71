# METADATA
# title: Trusted registries
# description: >-
#   Every image comes from a configured registry, or a repository path under it. Images are compared as parsed
#   references (nginx is index.docker.io/library/nginx) on whole path segments, so gcr.io/company trusts
#   gcr.io/company/app but not gcr.io/company-evil/app or gcr.io.evil.com/company/app. The matching is done once
#   per image by ATTEST and given to the policy as input.images[image].trusted_registry.
# custom:
#   name: trusted-registries
#   severity: high
#   mode: enforce
#   remediation: use an image from a trusted registry or add a PolicyException
#   compliance:
#     soc2: [CC6.8, CC7.1]
#     hipaa: ["164.312(c)(1)"]
#     gdpr: [Art. 32]
#   parameters:
#     trusted_registries:
#       type: array
#       items: {type: string, minLength: 1, pattern: "^[^\\s]+$"}
#       default: []
#       description: registries ("gcr.io/") or registry/repository prefixes ("registry.company.com/team"); docker.io/library covers Docker Hub's official images
package attest.library.trusted_registries

import rego.v1

violation contains {"message": msg, "path": c.path, "fix": "write the image as a valid reference, e.g. registry.example.com/team/app:1.2.3"} if {
	some c in input.containers
	err := input.images[c.image].error
	err != ""
	msg := sprintf("image %q cannot be parsed: %s", [c.image, err])
}

violation contains {"message": msg, "path": c.path, "fix": "ask your cluster administrators to check the ATTEST logs"} if {
	some c in input.containers
	not input.images[c.image]
	msg := sprintf("image %q cannot be admitted: ATTEST established no facts about it", [c.image])
}

violation contains {"message": msg, "path": c.path, "fix": fix} if {
	count(input.params.trusted_registries) > 0
	some c in input.containers
	img := input.images[c.image]
	img.trusted_registry == false
	msg := sprintf("image %q is from %s, which is not a trusted registry", [c.image, img.name])
	fix := sprintf("use an image under %s, or add a PolicyException", [registries_hint])
}

# registries_hint names at most three trusted prefixes, so the message stays readable (and within the API
# server's 256-character warning limit).
registries := sort(input.params.trusted_registries)

registries_hint := concat(", ", registries) if count(registries) <= 3

registries_hint := sprintf("%s (or %d more)", [concat(", ", array.slice(registries, 0, 3)), count(registries) - 3]) if count(registries) > 3

violation contains {"message": msg, "path": c.path, "fix": "list trusted registries in the trusted_registries parameter of trusted-registries"} if {
	count(input.params.trusted_registries) == 0
	some c in input.containers
	input.images[c.image].trusted_registry == false
	msg := sprintf("image %q cannot be admitted: no trusted registries are configured", [c.image])
}
