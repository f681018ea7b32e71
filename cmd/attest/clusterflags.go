package main

import "github.com/spf13/pflag"

// clusterFlags are kubectl's connection flags.
type clusterFlags struct {
	kubeconfig string
	context    string
}

func (c *clusterFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl)")
	f.StringVar(&c.context, "context", "", "kubeconfig context to use (default: the current context)")
}
