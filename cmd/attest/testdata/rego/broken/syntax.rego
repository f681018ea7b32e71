package custom.syntax

import rego.v1

violation contains msg if {
	msg := "unclosed
}
