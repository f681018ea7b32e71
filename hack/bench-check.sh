#!/usr/bin/env bash
# Times `attest policy check` with no-privileged and trusted-registries on 1,000 and 10,000 generated mixed
# manifests (wall time including start-up, and peak RSS), and start-up alone on one object.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go run ./hack/genmanifests -n 1000 -dir "$work/m1000"
go run ./hack/genmanifests -n 10000 -dir "$work/m10000"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n' > "$work/one.yaml"
cat > "$work/policies.yaml" <<'CFG'
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: [gcr.io/company, docker.io/library]
CFG
if command -v hyperfine > /dev/null; then
  hyperfine -N --warmup 2 -i \
    "./bin/attest policy check -f $work/one.yaml" \
    "./bin/attest policy check --config $work/policies.yaml -f $work/m1000" \
    "./bin/attest policy check --config $work/policies.yaml -f $work/m10000"
fi
for set in one.yaml m1000 m10000; do
  # exit code 1 means "something would be denied", which these manifests are built to provoke
  /usr/bin/time -f "$set: %e s wall, %M KiB peak RSS" ./bin/attest policy check --config "$work/policies.yaml" -f "$work/$set" > /dev/null || true
done
