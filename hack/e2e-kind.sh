#!/usr/bin/env bash
# make e2e-kind: the e2e suite against a kind cluster with ATTEST deployed from manifests/ (needs Docker that can
# pull images, and kind on PATH). UNTESTED on the development machines, which have no Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=${KIND_CLUSTER:-attest-e2e}
work=$(mktemp -d)
cleanup() { rm -rf "$work"; [[ ${KEEP_CLUSTER:-} ]] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT
kind create cluster --name "$cluster" --wait 120s
docker build -t attest:dev .
kind load docker-image attest:dev --name "$cluster"
kubeconfig="$work/kubeconfig"
kind get kubeconfig --name "$cluster" > "$kubeconfig"
export KUBECONFIG=$kubeconfig
# ATTEST issues its own certificate into attest-tls and injects the CA into both webhook configurations.
kubectl apply -k manifests/overlays/kind
kubectl -n attest-system rollout status deployment/attest --timeout=180s
cd e2e && ATTEST_E2E_KUBECONFIG=$kubeconfig go test -count=1 -timeout 15m ./...
