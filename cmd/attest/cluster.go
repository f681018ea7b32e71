//go:build !lean

package main

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/continuums/attest/api/v1alpha1"
)

// clusterConnector returns a client for the cluster that the kubeconfig (path, or the default loading rules when
// empty) and context (empty: the current one) name, and the namespace that context selects ("default" if none).
type clusterConnector func(kubeconfig, context string) (client.Client, string, error)

// kubeconfigCluster connects the way kubectl does: client-go's default loading rules ($KUBECONFIG, then
// ~/.kube/config), --kubeconfig overriding them, --context choosing the context.
func kubeconfigCluster(kubeconfig, context string) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	c, err := newClusterClient(cfg)
	if err != nil {
		return nil, "", err
	}
	return c, ns, nil
}

// newClusterClient builds a client that knows ATTEST's custom resources.
func newClusterClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "attest-cli"
	c, err := client.New(cfg, client.Options{Scheme: clusterScheme()})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return c, nil
}

// clusterScheme holds the types the CLI reads and writes.
func clusterScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err) // registering known types cannot fail
	}
	return s
}
