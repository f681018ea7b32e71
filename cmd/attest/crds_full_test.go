//go:build !lean

package main

const kubeconfigMissing = "error: kubeconfig: stat testdata/cedar/nope.kubeconfig: no such file or directory"
