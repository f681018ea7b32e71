package custom.clock_test

import rego.v1

test_late if {
	data.custom.clock.violation["too late"] with input as {"deadline": 0}
}
