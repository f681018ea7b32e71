# METADATA
# title: Resource limits
# description: >-
#   Containers and init containers set CPU and memory limits (require_limits), within max_cpu and max_memory when
#   those are configured, so one workload cannot starve its neighbours on a node. Quantities are compared as
#   Kubernetes quantities (500m < 1, 1Gi > 1000Mi), never as text; a quantity that is not one is reported.
#   Ephemeral containers cannot set resources and are not judged. With mutate enabled, the patch rule adds
#   default_limits and default_requests where a container has none: a default limit is raised to the container's
#   own request, a default request is lowered to its limit, and no request is added where the container sets a
#   limit (Kubernetes then requests the limit).
# custom:
#   name: resource-limits
#   severity: medium
#   mode: audit
#   remediation: set resources.limits.cpu and resources.limits.memory, or add a PolicyException
#   compliance:
#     soc2: [A1.1]
#     hipaa: ["164.308(a)(7)"]
#   parameters:
#     require_limits:
#       type: boolean
#       default: true
#       description: every container and init container sets limits.cpu and limits.memory
#     max_cpu:
#       type: string
#       pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
#       description: the largest CPU limit a container may set, e.g. "2" or "1500m"; unset means no maximum
#     max_memory:
#       type: string
#       pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
#       description: the largest memory limit a container may set, e.g. "4Gi"; unset means no maximum
#     default_limits:
#       type: object
#       additionalProperties: false
#       properties:
#         cpu: {type: string, pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"}
#         memory: {type: string, pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"}
#       default: {cpu: 500m, memory: 512Mi}
#       description: limits the patch rule adds where a container sets none ({} adds none)
#     default_requests:
#       type: object
#       additionalProperties: false
#       properties:
#         cpu: {type: string, pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"}
#         memory: {type: string, pattern: "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"}
#       default: {cpu: 100m, memory: 128Mi}
#       description: requests the patch rule adds where a container sets neither request nor limit ({} adds none)
package attest.library.resource_limits

import rego.v1

# --- quantities ---

# A Kubernetes quantity: a decimal number with a binary (Ki…Ei) or decimal (n, u, m, k…E) suffix or an exponent.
# Signs are left out: no resource is negative.
quantity_pattern := `^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`

# quantity is the value of q in base units (cores, bytes), undefined when q is not a quantity. units.parse knows
# every suffix but n and u, and is laxer than Kubernetes (it takes "1K", "1g"), hence the pattern first, matched
# once per quantity.
quantity(q) := q if {
	is_number(q)
	q >= 0
}

quantity(q) := scaled(q) if {
	is_string(q)
	regex.match(quantity_pattern, q)
}

scaled(q) := to_number(trim_suffix(q, "n")) / 1000000000 if endswith(q, "n")

else := to_number(trim_suffix(q, "u")) / 1000000 if endswith(q, "u")

else := units.parse(q)

show(q) := q if is_string(q)

show(q) := json.marshal(q) if not is_string(q)

# --- containers ---

# Containers and init containers; ephemeral containers have no resources.
judged contains c if {
	some c in input.containers
	c.type in {"container", "init"}
}

# sections[path] are the limits and requests of the judged container at path, {} where it sets none: worked out
# once per container, however many rules read them.
sections[c.path] := {"limits": section(c, "limits"), "requests": section(c, "requests")} if {
	some c in input.containers
	c.type in {"container", "init"}
}

section(c, name) := c.resources[name] if is_object(c.resources[name])

else := {}

word := {"cpu": "CPU", "memory": "memory"}

field(path, name, r) := sprintf("%s.resources.%s.%s", [path, name, r]) if regex.match(`^[A-Za-z0-9_-]+$`, r)

field(path, name, r) := sprintf("%s.resources.%s[%q]", [path, name, r]) if not regex.match(`^[A-Za-z0-9_-]+$`, r)

# --- limits must be set ---

violation contains {"message": msg, "path": sprintf("%s.resources.limits", [path]), "fix": fix} if {
	input.params.require_limits == true
	some path, s in sections
	not both_limits(s.limits)
	missing := [r | some r in ["cpu", "memory"]; not has_key(s.limits, r)]
	count(missing) > 0
	msg := missing_message(missing)
	fix := sprintf("set %s, or add a PolicyException", [concat(" and ", [sprintf("resources.limits.%s", [r]) | some r in missing])])
}

has_key(obj, key) if _ = obj[key]

both_limits(limits) if {
	has_key(limits, "cpu")
	has_key(limits, "memory")
}

missing_message(["cpu", "memory"]) := "no CPU or memory limit is set"

missing_message([r]) := sprintf("no %s limit is set", [word[r]])

# --- quantities must be quantities ---

violation contains {"message": msg, "path": field(path, name, r), "fix": "write a Kubernetes quantity, such as 500m or 2 for CPU and 256Mi or 1Gi for memory"} if {
	some path, s in sections
	some name in ["limits", "requests"]
	some r, q in s[name]
	not quantity(q)
	msg := sprintf("resources.%s.%s %s is not a valid quantity", [name, r, json.marshal(q)])
}

# --- limits within the maximum ---

maximum := {r: input.params[key] |
	some r, key in {"cpu": "max_cpu", "memory": "max_memory"}
	is_string(input.params[key])
}

# Each maximum as a number, computed once rather than once per container.
max_quantity := {r: quantity(max) | some r, max in maximum}

violation contains {"message": msg, "path": field(path, "limits", r), "fix": fix} if {
	some r, max in maximum
	some path, s in sections
	limit := s.limits[r]
	quantity(limit) > max_quantity[r]
	msg := sprintf("%s limit %s is above the maximum of %s", [word[r], show(limit), max])
	fix := sprintf("lower resources.limits.%s to %s or less, or add a PolicyException", [r, max])
}

violation contains {"message": msg, "path": field(path, "requests", r), "fix": fix} if {
	some r, max in maximum
	some path, s in sections
	not has_key(s.limits, r)
	request := s.requests[r]
	quantity(request) > max_quantity[r]
	msg := sprintf("%s request %s is above the maximum of %s", [word[r], show(request), max])
	fix := sprintf("lower resources.requests.%s to %s or less, or add a PolicyException", [r, max])
}

# --- patch: default limits and requests where missing ---

defaults(name) := input.params[name] if is_object(input.params[name])

else := {}

# new_limits(c) are the limits to add: each default the container lacks, raised to the container's own request.
new_limits(c) := {r: larger(d, object.get(section(c, "requests"), r, null)) |
	some r, d in defaults("default_limits")
	not has_key(section(c, "limits"), r)
	quantity(d)
	valid_or_absent(section(c, "requests"), r)
}

# new_requests(c) are the requests to add where the container sets neither request nor limit, each lowered to the
# limit the patch adds.
new_requests(c) := {r: smaller(d, object.get(new_limits(c), r, null)) |
	some r, d in defaults("default_requests")
	not has_key(section(c, "requests"), r)
	not has_key(section(c, "limits"), r)
	quantity(d)
}

valid_or_absent(obj, r) if not has_key(obj, r)

valid_or_absent(obj, r) if quantity(obj[r])

larger(d, own) := own if quantity(own) > quantity(d)

else := d

smaller(d, limit) := limit if quantity(limit) < quantity(d)

else := d

# pointer turns spec.template.spec.containers[0] into /spec/template/spec/containers/0.
pointer(path) := concat("/", array.concat([""], [escape(s) | some s in split(regex.replace(path, `\[([0-9]+)\]`, ".$1"), ".")]))

escape(s) := replace(replace(s, "~", "~0"), "/", "~1")

# (Functions, because `not is_object(x.y)` is undefined, not true, when x.y is.)
has_resources(c) if is_object(c.resources)

has_section(c, name) if is_object(c.resources[name])

patch contains {"op": "add", "path": sprintf("%s/resources", [pointer(c.path)]), "value": value} if {
	some c in judged
	not has_resources(c)
	value := {name: v |
		some name, v in {"limits": new_limits(c), "requests": new_requests(c)}
		count(v) > 0
	}
	count(value) > 0
}

patch contains {"op": "add", "path": sprintf("%s/resources/%s", [pointer(c.path), name]), "value": v} if {
	some c in judged
	has_resources(c)
	some name, v in {"limits": new_limits(c), "requests": new_requests(c)}
	not has_section(c, name)
	count(v) > 0
}

patch contains {"op": "add", "path": sprintf("%s/resources/%s/%s", [pointer(c.path), name, escape(r)]), "value": q} if {
	some c in judged
	some name, v in {"limits": new_limits(c), "requests": new_requests(c)}
	has_section(c, name)
	some r, q in v
}
