//go:build lean

package bundles

import (
	"context"
	"fmt"

	"github.com/continuums/attest/policies"
)

// gatekeeperPolicies: the lean build leaves Gatekeeper's evaluation library out, so attest-full checks a bundle
// with Gatekeeper files (the lean CLI hands `bundle build` over to it; see ErrFullBuild).
func gatekeeperPolicies(_ context.Context, files []File, prefix string) ([]*policies.Policy, error) {
	return nil, fmt.Errorf("%s: %w", named(prefix, files[0].Path), ErrFullBuild)
}
