// Package controlplane is a wrapper module that builds kube-apiserver, kube-controller-manager, etcd and kubectl
// from the k8s.io/kubernetes module for ATTEST's e2e suite. It lives apart from the product's go.mod, which stays
// lean; `make controlplane` builds it once per version into a cache directory.
package controlplane
