package custom.undefined

import rego.v1

violation contains msg if {
	msg := no_such_function(input.x)
}
