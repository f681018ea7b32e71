//go:build lean

package attestation

import "time"

// Metrics records nothing in the lean CLI, which serves no metrics: Prometheus' client is not linked, a
// twentieth of the CLI's start-up.
type Metrics struct{}

func (*Metrics) verified(string, time.Duration) {}

func (*Metrics) cacheLookup(bool) {}
