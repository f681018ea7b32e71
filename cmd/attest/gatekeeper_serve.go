//go:build !lean

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/config"
	"github.com/continuums/attest/manifest"
	"github.com/continuums/attest/policies"
	"github.com/continuums/attest/policies/gatekeeper/cluster"
)

// gatekeeperServeOptions give `attest serve` Gatekeeper constraints from files (a mounted ConfigMap, a GitOps
// checkout), read at start, and, with --gatekeeper-watch, from the cluster's resources: each constraint one
// policy <Kind>/<name> of the webhook's pipeline.
type gatekeeperServeOptions struct {
	paths           []string
	expandWorkloads bool
	watch           bool
	syncConfig      string

	files gatekeeperInputs // with --gatekeeper-watch, the files' documents join the cluster's
	other []manifest.Object
}

func (o *gatekeeperServeOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.paths, "gatekeeper", nil, "file or directory of Gatekeeper ConstraintTemplates, Constraints and ExpansionTemplates (repeatable), read at start: each constraint is enforced as the policy <Kind>/<name>; other objects there fill data.inventory")
	f.BoolVar(&o.expandWorkloads, "gatekeeper-expand-workloads", false, "Gatekeeper constraints judge every workload kind as the Pod it creates (ATTEST's built-in ExpansionTemplates)")
	f.BoolVar(&o.watch, "gatekeeper-watch", false, "watch the cluster's ConstraintTemplates, constraints, ExpansionTemplates and Config (manifests/overlays/gatekeeper): create each template's constraint CRD unless another owner has it, enforce each constraint as <Kind>/<name>, write their status, refuse broken ones at kubectl apply")
	f.StringVar(&o.syncConfig, "gatekeeper-sync-config", "attest-system/config", "NAMESPACE/NAME of the Config (config.gatekeeper.sh) whose spec.sync.syncOnly selects the kinds synced into data.inventory (Gatekeeper's own: gatekeeper-system/config)")
}

// withPolicies adds the constraints of the --gatekeeper files to the engine; without files it is the engine.
// With --gatekeeper-watch the files are checked here and join the cluster's resources in watchCluster instead.
func (o *gatekeeperServeOptions) withPolicies(ctx context.Context, engine *policies.Engine) (*policies.Engine, error) {
	if len(o.paths) == 0 {
		if o.expandWorkloads && !o.watch {
			return nil, fmt.Errorf("--gatekeeper-expand-workloads: no --gatekeeper files and no --gatekeeper-watch")
		}
		return engine, nil
	}
	sources, err := manifest.Collect(o.paths, nil)
	if err != nil {
		return nil, fmt.Errorf("--gatekeeper: %w", err)
	}
	g := readGatekeeperInputs(sources)
	if len(g.constraints) == 0 && !o.watch {
		return nil, fmt.Errorf("--gatekeeper: no Constraint in %v", o.paths)
	}
	ps, err := gatekeeperPolicies(ctx, g, nil, sources, o.expandWorkloads)
	if err != nil {
		return nil, fmt.Errorf("--gatekeeper: %w", err)
	}
	if o.watch {
		o.files = g
		for _, src := range sources {
			for doc, err := range manifest.Documents(src) {
				if err != nil {
					continue
				}
				objs, err := doc.Objects()
				if err != nil {
					continue
				}
				for _, obj := range objs {
					if !isGatekeeperDocument(obj.Object) && !isPolicyException(obj.Object) {
						o.other = append(o.other, obj)
					}
				}
			}
		}
		return engine, nil
	}
	return engine.With(ps...)
}

// watchCluster starts the Gatekeeper controller when --gatekeeper-watch asks for it. It returns the
// configuration source with the constraints layered over current (swapped as a whole after each change), the
// validator of templates and constraints for the resource webhook, and the controller's readiness.
func (o *gatekeeperServeOptions) watchCluster(g *errgroup.Group, ctx context.Context, cfg *rest.Config, current func() *config.Config, log *slog.Logger) (func() *config.Config, admission.ResourceValidator, func() error, error) {
	if !o.watch {
		return current, nil, nil, nil
	}
	if cfg == nil {
		return nil, nil, nil, fmt.Errorf("--gatekeeper-watch needs a cluster: run in a Pod or pass --kubeconfig")
	}
	ns, name, ok := strings.Cut(o.syncConfig, "/")
	if !ok || ns == "" || name == "" {
		return nil, nil, nil, fmt.Errorf("--gatekeeper-sync-config %q: want NAMESPACE/NAME", o.syncConfig)
	}
	dynamic := config.NewDynamic(current)
	objs := func(list []manifest.Object) []cluster.Object {
		out := make([]cluster.Object, 0, len(list))
		for _, m := range list {
			out = append(out, cluster.Object{Obj: &unstructured.Unstructured{Object: m.Object}, Source: fmt.Sprintf("%s:%d", m.File, m.Line)})
		}
		return out
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	c, err := cluster.New(cluster.Options{
		Config: cfg, Templates: objs(o.files.templates), Constraints: objs(o.files.constraints),
		Expansions: objs(o.files.expansions), Inventory: objs(o.other), ExpandWorkloads: o.expandWorkloads,
		SyncConfig: types.NamespacedName{Namespace: ns, Name: name}, ID: "attest-" + id,
		Publish: func(ps []*policies.Policy) { dynamic.Set("gatekeeper", ps) },
		Log:     log.With("component", "gatekeeper"),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	g.Go(func() error { return c.Start(ctx) })
	return dynamic.Current, c, c.Synced, nil
}
