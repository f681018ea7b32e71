//go:build !lean

package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
)

// gatekeeperServeOptions give `attest serve` Gatekeeper constraints from files (a mounted ConfigMap, a GitOps
// checkout): read at start, each constraint one policy <Kind>/<name> of the webhook's pipeline.
type gatekeeperServeOptions struct {
	paths           []string
	expandWorkloads bool
}

func (o *gatekeeperServeOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.paths, "gatekeeper", nil, "file or directory of Gatekeeper ConstraintTemplates, Constraints and ExpansionTemplates (repeatable), read at start: each constraint is enforced as the policy <Kind>/<name>; other objects there fill data.inventory")
	f.BoolVar(&o.expandWorkloads, "gatekeeper-expand-workloads", false, "Gatekeeper constraints judge every workload kind as the Pod it creates (ATTEST's built-in ExpansionTemplates)")
}

// withPolicies adds the constraints of the --gatekeeper files to the engine; without files it is the engine.
func (o *gatekeeperServeOptions) withPolicies(ctx context.Context, engine *policies.Engine) (*policies.Engine, error) {
	if len(o.paths) == 0 {
		if o.expandWorkloads {
			return nil, fmt.Errorf("--gatekeeper-expand-workloads: no --gatekeeper files")
		}
		return engine, nil
	}
	sources, err := manifest.Collect(o.paths, nil)
	if err != nil {
		return nil, fmt.Errorf("--gatekeeper: %w", err)
	}
	g := readGatekeeperInputs(sources)
	if len(g.constraints) == 0 {
		return nil, fmt.Errorf("--gatekeeper: no Constraint in %v", o.paths)
	}
	ps, err := gatekeeperPolicies(ctx, g, nil, sources, o.expandWorkloads)
	if err != nil {
		return nil, fmt.Errorf("--gatekeeper: %w", err)
	}
	return engine.With(ps...)
}
