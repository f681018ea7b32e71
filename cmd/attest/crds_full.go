//go:build !lean

package main

import (
	"context"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// clusterCRDs lists the cluster's CustomResourceDefinitions, connecting as kubectl does with f.
func clusterCRDs(ctx context.Context, f clusterFlags) ([]apiextensionsv1.CustomResourceDefinition, error) {
	cfg, _, err := kubeconfigRest(f)
	if err != nil {
		return nil, err
	}
	return listCRDs(ctx, cfg)
}

// listCRDs lists the CustomResourceDefinitions of the cluster of cfg.
func listCRDs(ctx context.Context, cfg *rest.Config) ([]apiextensionsv1.CustomResourceDefinition, error) {
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list the cluster's CustomResourceDefinitions: %w", err)
	}
	return list.Items, nil
}
