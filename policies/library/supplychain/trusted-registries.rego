# METADATA
# title: Trusted registries
# description: >-
#   Every image comes from a configured registry, or a repository path under it. Images are compared as parsed
#   references (nginx is index.docker.io/library/nginx) on whole path segments, so gcr.io/company trusts
#   gcr.io/company/app but not gcr.io/company-evil/app or gcr.io.evil.com/company/app.
# custom:
#   name: trusted-registries
#   severity: high
#   mode: enforce
#   remediation: use an image from a trusted registry or add a PolicyException
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
	err := image_error(c.image)
	msg := sprintf("image %q cannot be parsed: %s", [c.image, err])
}

violation contains {"message": msg, "path": c.path, "fix": fix} if {
	some c in input.containers
	not image_error(c.image)
	img := input.images[c.image]
	not trusted(img)
	count(entries) > 0
	msg := sprintf("image %q is from %s, which is not a trusted registry", [c.image, concat("/", [img.registry, img.repository])])
	fix := sprintf("use an image under %s, or add a PolicyException", [concat(", ", sort(input.params.trusted_registries))])
}

violation contains {"message": msg, "path": c.path, "fix": "list trusted registries in the trusted_registries parameter of trusted-registries"} if {
	some c in input.containers
	not image_error(c.image)
	count(entries) == 0
	msg := sprintf("image %q cannot be admitted: no trusted registries are configured", [c.image])
}

image_error(image) := input.images[image].error

image_error(image) := "no facts were established for this image" if not input.images[image]

# entries are the configured prefixes, normalised as references are: lower-case host, docker.io as
# index.docker.io, no trailing slash.
entries contains normalize(e) if some e in input.params.trusted_registries

trusted(img) if {
	name := concat("/", [img.registry, img.repository])
	some e in entries
	under(name, e)
}

under(name, prefix) if name == prefix

under(name, prefix) if startswith(name, concat("", [prefix, "/"]))

normalize(entry) := concat("/", array.concat([canonical_host(lower(parts[0]))], array.slice(parts, 1, count(parts)))) if {
	parts := split(trim_right(entry, "/"), "/")
}

canonical_host("docker.io") := "index.docker.io"

canonical_host(host) := host if host != "docker.io"
