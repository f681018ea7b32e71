#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, etcd and kubectl from the k8s.io/kubernetes module pinned in
# e2e/controlplane/go.mod into $1 (a cache directory keyed by version), stamped with the release version so that
# kubectl and clients can parse it. Skips the build when the directory already holds a build of this version.
set -euo pipefail
out=${1:?usage: build-controlplane.sh OUTPUT_DIR VERSION}
want=${2:?usage: build-controlplane.sh OUTPUT_DIR VERSION}
cd "$(dirname "$0")/../e2e/controlplane"
version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
if [[ $version != "$want" ]]; then
  echo "e2e/controlplane/go.mod pins k8s.io/kubernetes $version but the Makefile says $want: update K8S_VERSION" >&2
  exit 1
fi
stamp="$out/.built-$version"
if [[ -f $stamp ]]; then
  exit 0
fi
minor=$(echo "$version" | cut -d. -f2)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.buildDate=$date"
done
echo "building the e2e control plane $version into $out (cold: ~5 min on 2 cores; cached afterwards)"
mkdir -p "$out"
go build -trimpath -ldflags "$ldflags" -o "$out/" ./cmd/...
touch "$stamp"
