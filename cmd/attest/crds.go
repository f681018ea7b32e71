package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/continuums/attest/policies/cedar"
)

// addCRDsFlag adds --crds: the CustomResourceDefinitions whose kinds Cedar policies may name offline.
func addCRDsFlag(f *pflag.FlagSet, paths *[]string) {
	f.StringArrayVar(paths, "crds", nil, "CustomResourceDefinition manifests (file or directory of YAML or JSON; repeatable): their served versions become Cedar entity types")
}

// readCRDFiles reads the CRDs of files and directories (recursively: *.yaml, *.yml, *.json); other objects in
// them are ignored, and no CRD at all is an error.
func readCRDFiles(paths []string) ([]apiextensionsv1.CustomResourceDefinition, error) {
	var out []apiextensionsv1.CustomResourceDefinition
	for _, p := range paths {
		files, err := findFiles(p, func(name string) bool {
			return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".json")
		})
		if err != nil {
			return nil, fmt.Errorf("--crds: %w", err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("--crds: %w", err)
			}
			crds, err := cedar.ReadCRDs(f, raw)
			if err != nil {
				return nil, fmt.Errorf("--crds: %w", err)
			}
			out = append(out, crds...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--crds: no CustomResourceDefinition (apiextensions.k8s.io/v1) in %s", strings.Join(paths, ", "))
	}
	return out, nil
}

// useCRDs makes the Cedar schema of this run include the kinds of crds; a CRD that cannot be converted is a
// warning on stderr naming it and the field at fault.
func useCRDs(stderr io.Writer, crds []apiextensionsv1.CustomResourceDefinition) error {
	skipped, err := cedar.UseCustomKinds(crds)
	for _, s := range skipped {
		fmt.Fprintf(stderr, "warning: %v: its kinds are left out of the Cedar schema\n", s)
	}
	if err != nil {
		return failure(err)
	}
	return nil
}

// crdOptions are where a command takes CRDs from: --crds files, and with --kubeconfig or --context the
// cluster's (the lean build hands that run to attest-full).
type crdOptions struct {
	files   []string
	cluster clusterFlags
	// withCluster is set on the commands that offer --kubeconfig and --context.
	withCluster bool
	// always reads the cluster's CRDs even without --kubeconfig or --context (`policy check --cluster`).
	always bool
}

// fromCluster makes use read the CRDs of the cluster f connects to, as a command that reads that cluster anyway.
func (o *crdOptions) fromCluster(f clusterFlags) {
	o.withCluster, o.always, o.cluster = true, true, f
}

func (o *crdOptions) add(f *pflag.FlagSet, withCluster bool) {
	addCRDsFlag(f, &o.files)
	if withCluster {
		o.withCluster = true
		o.cluster.add(f)
	}
}

// use installs the CRDs' kinds in this run's Cedar schema.
func (o *crdOptions) use(ctx context.Context, stderr io.Writer) error {
	var crds []apiextensionsv1.CustomResourceDefinition
	if len(o.files) > 0 {
		var err error
		if crds, err = readCRDFiles(o.files); err != nil {
			return usageError(err)
		}
	}
	if o.withCluster && (o.always || o.cluster.kubeconfig != "" || o.cluster.context != "") {
		fromCluster, err := clusterCRDs(ctx, o.cluster)
		if err != nil {
			return failure(err)
		}
		crds = append(crds, fromCluster...)
	}
	if len(crds) == 0 {
		return nil
	}
	return useCRDs(stderr, crds)
}
