package custom.syntax_test

import rego.v1

test_nothing if { true }
