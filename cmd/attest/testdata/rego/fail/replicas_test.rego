package custom.two_replicas_test

import rego.v1

import data.custom.two_replicas

test_one_replica_denied if {
	count(two_replicas.violation) == 1 with input as {"resource": {"kind": "Deployment", "spec": {"replicas": 1}}}
}

# Wrong on purpose: two replicas are enough.
test_two_replicas_denied if {
	count(two_replicas.violation) == 1 with input as {"resource": {"kind": "Deployment", "spec": {"replicas": 2}}}
}

# Undefined (1/0 has no value) fails like false.
test_undefined_fails if {
	x := 1 / 0
	x == 1
}
