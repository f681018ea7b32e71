#!/usr/bin/env bash
# Serves ATTEST locally over TLS with a throw-away self-signed certificate and the example config, and prints a
# request to try. Stops (and cleans up) on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.run/local
mkdir -p "$dir/certs"
port=${ATTEST_PORT:-8443}
metrics=${ATTEST_METRICS_ADDRESS:-127.0.0.1:8080}
probes=${ATTEST_PROBE_ADDRESS:-127.0.0.1:8081}
if [[ ! -s $dir/certs/tls.crt ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=attest.local" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$dir/certs/tls.key" -out "$dir/certs/tls.crt" 2>/dev/null
fi
cp -n examples/policies.yaml "$dir/policies.yaml" 2>/dev/null || true
cat <<MSG
ATTEST is starting on https://127.0.0.1:$port (config: $dir/policies.yaml, edited files are reloaded),
with metrics on http://$metrics/metrics and probes on http://$probes/healthz and /readyz.
Try, in another terminal:

  curl -s --cacert $dir/certs/tls.crt -H 'Content-Type: application/json' \\
    --data @examples/review-privileged-deployment.json https://127.0.0.1:$port/validate | jq .

  ./bin/attest policy check -f examples/manifests --config $dir/policies.yaml

Ctrl-C stops it.
MSG
exec ./bin/attest serve --host 127.0.0.1 --port "$port" --metrics-bind-address "$metrics" \
  --health-probe-bind-address "$probes" --cert-dir "$dir/certs" --config "$dir/policies.yaml"
