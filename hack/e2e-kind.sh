#!/usr/bin/env bash
# make e2e-kind: the e2e suite against a kind cluster with ATTEST deployed from manifests/ (needs Docker that can
# pull images, and kind on PATH). UNTESTED on the development machines, which have no Docker engine.
# Until ATTEST manages its own certificates, this script issues the serving certificate with openssl and injects
# the CA into both webhook configurations.
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
svc=attest.attest-system.svc
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=attest-ca" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$svc" \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile <(printf "subjectAltName=DNS:%s,DNS:attest.attest-system,DNS:attest" "$svc") -out "$work/tls.crt" 2>/dev/null
kubectl apply -f manifests/base/namespace.yaml
kubectl -n attest-system create secret tls attest-tls --cert "$work/tls.crt" --key "$work/tls.key"
kubectl apply -k manifests/overlays/kind
ca=$(base64 -w0 < "$work/ca.crt")
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  kubectl patch "$kind" attest --type=json -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]"
done
kubectl -n attest-system rollout status deployment/attest --timeout=180s
cd e2e && ATTEST_E2E_KUBECONFIG=$kubeconfig go test -count=1 -timeout 15m ./...
