package custom.clock

import rego.v1

violation contains "too late" if {
	time.now_ns() > input.deadline
}
