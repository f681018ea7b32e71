# METADATA
# title: Production replicas
# description: >-
#   Deployments, StatefulSets and ReplicaSets in production namespaces run at least min_replicas replicas, so one
#   node drain, eviction or crash does not take the service down. A missing spec.replicas means 1, as Kubernetes
#   defaults it. ReplicaSets a Deployment controls are judged through their Deployment: the controller scales old
#   ReplicaSets to 0 during every rollout.
# custom:
#   name: production-replicas
#   severity: medium
#   mode: audit
#   remediation: raise spec.replicas, or add a PolicyException
#   compliance:
#     soc2: [A1.1, A1.2]
#     hipaa: ["164.308(a)(7)"]
#   parameters:
#     min_replicas:
#       type: integer
#       minimum: 1
#       default: 2
#       description: the fewest replicas a production workload may run
package attest.library.production_replicas

import rego.v1

kinds := {"Deployment", "StatefulSet", "ReplicaSet"}

kind := input.request.kind.kind

default name := ""

name := input.resource.metadata.name

name := input.request.name if not input.resource.metadata.name

# controlled objects (a ReplicaSet of a Deployment) are judged through their controller
controlled if {
	some ref in input.resource.metadata.ownerReferences
	ref.controller == true
}

applies if {
	kind in kinds
	input.namespace.production == true
	not controlled
}

min_replicas := input.params.min_replicas

fix := sprintf("set spec.replicas to %d or more, or add a PolicyException", [min_replicas])

violation contains {"message": msg, "path": "spec.replicas", "fix": fix} if {
	applies
	replicas := input.resource.spec.replicas
	is_number(replicas)
	replicas < min_replicas
	msg := sprintf("%s %s has %d %s, but workloads in production namespace %s need at least %d", [kind, name, replicas, plural(replicas), input.namespace.name, min_replicas])
}

violation contains {"message": msg, "path": "spec.replicas", "fix": fix} if {
	applies
	not replicas_set
	min_replicas > 1
	msg := sprintf("%s %s sets no spec.replicas, so it runs 1 replica, but workloads in production namespace %s need at least %d", [kind, name, input.namespace.name, min_replicas])
}

replicas_set if is_number(input.resource.spec.replicas)

plural(1) := "replica"

plural(n) := "replicas" if n != 1
