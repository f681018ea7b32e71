# METADATA
# title: Bad severity
# custom:
#   name: bad-severity
#   severity: urgent
package custom.metadata

import rego.v1

violation contains "x" if false
