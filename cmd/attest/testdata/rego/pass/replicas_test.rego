package custom.two_replicas_test

import rego.v1

import data.custom.two_replicas

test_one_replica_denied if {
	count(two_replicas.violation) == 1 with input as {"resource": {"kind": "Deployment", "spec": {"replicas": 1}}}
}

test_three_replicas_allowed if {
	count(two_replicas.violation) == 0 with input as {"resource": {"kind": "Deployment", "spec": {"replicas": 3}}}
}
