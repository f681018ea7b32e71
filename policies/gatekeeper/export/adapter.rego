# The adapter of exported templates: it builds ATTEST's input document (README "Input contract") from
# Gatekeeper's input.review, so that a library policy runs unchanged under Gatekeeper. What ATTEST's Go code
# establishes before a policy runs is established here in Rego: the pod specs of every workload kind with their
# paths, the parsed image references (distribution/reference's grammar: nginx is index.docker.io/library/nginx)
# and the trusted-registry match on whole path segments. Verifier facts (signatures, attestations) are not:
# policies that need them are not exported.
package lib.attest.adapter

pod_spec_path := {
	"Pod": ["spec"],
	"Deployment": ["spec", "template", "spec"],
	"ReplicaSet": ["spec", "template", "spec"],
	"StatefulSet": ["spec", "template", "spec"],
	"DaemonSet": ["spec", "template", "spec"],
	"Job": ["spec", "template", "spec"],
	"ReplicationController": ["spec", "template", "spec"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}

list_type := {"containers": "container", "initContainers": "init", "ephemeralContainers": "ephemeral"}

# document is ATTEST's input for a review, with the policy's parameters (the constraint's over the defaults).
document(review, parameters, defaults) := {
	"request": request(review),
	"resource": object.get(review, "object", {}),
	"namespace": namespace(review, params),
	"params": params,
	"containers": cs,
	"images": {img: image_facts(img, object.get(params, "trusted_registries", [])) | some c in cs; img := c.image},
} if {
	params := object.union(defaults, object.get({"p": parameters}, "p", {}))
	cs := containers(object.get(review, "object", {}), object.get(review, ["kind", "kind"], ""))
}

request(review) := {
	"uid": object.get(review, "uid", ""),
	"operation": object.get(review, "operation", "CREATE"),
	"kind": {
		"group": object.get(review, ["kind", "group"], ""),
		"version": object.get(review, ["kind", "version"], ""),
		"kind": object.get(review, ["kind", "kind"], ""),
	},
	"subresource": object.get(review, "subResource", ""),
	"namespace": object.get(review, "namespace", ""),
	"name": name(review),
	"dry_run": object.get(review, "dryRun", false),
	"user": {
		"username": object.get(review, ["userInfo", "username"], ""),
		"groups": object.get(review, ["userInfo", "groups"], []),
	},
}

name(review) := n if {
	n := review.name
	n != ""
} else := object.get(review, ["object", "metadata", "name"], "")

# namespace is input.namespace. A production namespace is one named in production_namespaces.names or whose
# labels include production_namespaces.labels (ATTEST's default: named production, or labelled
# environment=production).
namespace(review, params) := {
	"name": ns,
	"labels": object.get(review, ["namespaceObject", "metadata", "labels"], {}),
	"annotations": object.get(review, ["namespaceObject", "metadata", "annotations"], {}),
	"production": is_production(ns, object.get(review, ["namespaceObject", "metadata", "labels"], {}), params),
} if {
	ns := object.get(review, "namespace", "")
}

default_production := {"names": ["production"], "labels": {"environment": "production"}}

production(ns, _, params) if {
	ns != ""
	ns in object.get(params, ["production_namespaces", "names"], default_production.names)
}

production(ns, labels, params) if {
	ns != ""
	want := object.get(params, ["production_namespaces", "labels"], default_production.labels)
	count(want) > 0
	every k, v in want {
		labels[k] == v
	}
}

is_production(ns, labels, params) := true if {
	production(ns, labels, params)
} else := false

# containers lists every container of the object's pod spec with ATTEST's paths.
containers(obj, kind) := [c |
	p := pod_spec_path[kind]
	spec := object.get(obj, p, {})
	pod_path := concat(".", p)
	some list in ["containers", "initContainers", "ephemeralContainers"]
	some i, ctr in object.get(spec, list, [])
	c := {
		"path": sprintf("%s.%s[%d]", [pod_path, list, i]),
		"pod_path": pod_path,
		"type": list_type[list],
		"name": object.get(ctr, "name", ""),
		"image": object.get(ctr, "image", ""),
		"securityContext": object.get(ctr, "securityContext", null),
		"resources": object.get(ctr, "resources", null),
	}
]

# image_facts is input.images[image]: the parsed reference and the trusted-registry match, or the parse error.
image_facts(image, trusted) := {"error": ref.error} if {
	ref := parse(image)
	ref.error
}

image_facts(image, trusted) := facts if {
	ref := parse(image)
	not ref.error
	full := concat("/", [ref.registry, ref.repository])
	facts := object.union(
		{
			"reference": canonical(ref), "registry": ref.registry, "repository": ref.repository,
			"name": full, "tag": ref.tag, "digest": ref.digest,
			"trusted_registry": count(trusted_by(full, trusted)) > 0,
		},
		{"trusted_by": e | some e in trusted_by(full, trusted)},
	)
}

canonical(ref) := concat("", [ref.registry, "/", ref.repository, tag_part(ref.tag), digest_part(ref.digest)])

tag_part(t) := "" if t == ""

tag_part(t) := concat("", [":", t]) if t != ""

digest_part(d) := "" if d == ""

digest_part(d) := concat("", ["@", d]) if d != ""

trusted_by(full, trusted) := {e |
	some e in trusted
	p := entry_name(e)
	matches(full, p)
}

matches(full, p) if full == p

matches(full, p) if startswith(full, concat("", [p, "/"]))

# entry_name normalises a trusted entry as ATTEST does: no trailing "/", a lower-case host, docker.io is
# index.docker.io.
entry_name(e) := n if {
	trimmed := trim_right(e, "/")
	parts := split(trimmed, "/")
	host := docker_hub(lower(parts[0]))
	n := concat("/", array.concat([host], array.slice(parts, 1, count(parts))))
}

docker_hub(h) := "index.docker.io" if h == "docker.io"

docker_hub(h) := h if h != "docker.io"

# The reference grammar of distribution/reference (what ATTEST parses with), and ATTEST's words for what is
# wrong with a reference.
component_re := `^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`

host_re := `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$`

tag_re := `^[\w][\w.-]{0,127}$`

digest_re := `^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$`

parse(image) := {"error": "image reference is empty"} if image == ""

parse(image) := r if {
	image != ""
	[named, digest] := split_digest(image)
	[repo, tag] := split_tag(named)
	[host, path] := split_host(repo)
	why := problem(host, path, tag, digest)
	r := checked(image, why, host, path, tag, digest)
}

checked(image, why, _, _, _, _) := {"error": sprintf("image %q is not a valid reference: %s", [image, why])} if why != ""

checked(_, why, host, path, tag, digest) := {"registry": registry, "repository": library(registry, path), "tag": final_tag(tag, digest), "digest": digest} if {
	why == ""
	registry := docker_hub(lower(default_host(host)))
}

default_host(h) := "index.docker.io" if h == ""

default_host(h) := h if h != ""

split_digest(image) := [parts[0], parts[1]] if {
	parts := split(image, "@")
	count(parts) == 2
}

split_digest(image) := [image, ""] if not contains(image, "@")

split_digest(image) := [parts[0], concat("@", array.slice(parts, 1, count(parts)))] if {
	parts := split(image, "@")
	count(parts) > 2
}

# A colon after the last slash starts the tag; one before it is a port.
split_tag(named) := [substring(named, 0, i), substring(named, i + 1, -1)] if {
	i := last_colon(named)
	i >= 0
}

split_tag(named) := [named, ""] if last_colon(named) < 0

last_colon(s) := i if {
	slash := max(array.concat([-1], indexof_n(s, "/")))
	colons := [j | some j in indexof_n(s, ":"); j > slash]
	count(colons) > 0
	i := max(colons)
} else := -1

# split_host reads the first segment as the registry host, as the runtime does, when it has a dot or a colon, is
# localhost or has upper-case letters; otherwise the name is on Docker Hub (host "").
split_host(repo) := [parts[0], concat("/", array.slice(parts, 1, count(parts)))] if {
	parts := split(repo, "/")
	count(parts) > 1
	is_host(parts[0])
}

split_host(repo) := ["", repo] if {
	parts := split(repo, "/")
	not is_host_first(parts)
}

is_host_first(parts) if {
	count(parts) > 1
	is_host(parts[0])
}

is_host(c) if contains(c, ".")

is_host(c) if contains(c, ":")

is_host(c) if c == "localhost"

is_host(c) if c != lower(c)

library(host, path) := concat("/", ["library", path]) if {
	host == "index.docker.io"
	not contains(path, "/")
} else := path

final_tag(tag, digest) := "latest" if {
	tag == ""
	digest == ""
} else := tag

# problem is the first thing wrong, in the order ATTEST checks: digest, tag, host, then each path segment.
problem(host, path, tag, digest) := sprintf("the digest %q is not valid: write it as sha256: and 64 lower-case hexadecimal digits", [digest]) if {
	digest != ""
	not regex.match(digest_re, digest)
} else := sprintf("the tag %q is not valid: a tag is at most 128 letters, digits, _ . and -, and does not start with . or -", [tag]) if {
	tag != ""
	not regex.match(tag_re, tag)
} else := sprintf("the registry host %q is not valid: a host is DNS labels of letters, digits and -, or an IP address, optionally with :port", [host]) if {
	host != ""
	not regex.match(host_re, host)
} else := segment_problems(path)[0] if {
	count(segment_problems(path)) > 0
} else := ""

segment_problems(path) := [why |
	some seg in split(path, "/")
	why := segment_problem(seg, path)
	why != ""
]

segment_problem(seg, path) := sprintf("the repository %q has an empty path segment", [path]) if {
	seg == ""
} else := sprintf("the path segment %q is not allowed: container runtimes refuse . and .. in a repository", [seg]) if {
	seg in {".", ".."}
} else := sprintf("the path segment %q has upper-case letters: repositories are lower case", [seg]) if {
	lower(seg) != seg
} else := sprintf("the path segment %q is not valid: lower-case letters and digits, separated by one ., one or two _, or dashes", [seg]) if {
	not regex.match(component_re, seg)
} else := ""
