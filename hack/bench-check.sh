#!/usr/bin/env bash
# Times `attest policy check` with exactly no-privileged and trusted-registries (--policy selects them; the other
# library policies are off) on 1,000 and 10,000 generated mixed manifests, wall time including start-up and peak
# RSS (/usr/bin/time %M), and start-up alone: a check of one object and `attest --help`. Each figure is the median
# of several runs; the load average before and after says how much other work shared the CPU.
#
#   hack/bench-check.sh [BINARY]   (default bin/attest; `make bench` builds it)
#
# The binary is copied first: a file the Go linker has just written maps more of itself per page fault than an
# installed one, which adds ~6 MiB to every RSS figure.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/attest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/attest"
attest=$work/attest
go run ./hack/genmanifests -n 1000 -dir "$work/m1000"
go run ./hack/genmanifests -n 10000 -dir "$work/m10000"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n' > "$work/one.yaml"
cat > "$work/policies.yaml" <<'CFG'
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: [gcr.io/company, docker.io/library]
CFG
check=(policy check --config "$work/policies.yaml" --policy no-privileged --policy trusted-registries -f)

# median of the numbers on stdin
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# measure NAME RUNS CMD...: RUNS timed runs after two warm-ups; prints the median wall time (ms), the median
# peak RSS (MiB) and the spread of the wall times. Exit status 1 ("would be denied") is expected.
measure() {
  local name=$1 runs=$2
  shift 2
  local walls=() rss=() i t0 t1
  for i in 1 2; do "$@" > /dev/null 2>&1 || [[ $? == 1 ]]; done
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" > /dev/null 2>&1 || [[ $? == 1 ]]
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000 ))")
    rss+=("$(tail -1 "$work/rss")")
  done
  local wall_ms rss_mib min max
  wall_ms=$(printf '%s\n' "${walls[@]}" | median | awk '{printf "%.1f", $1/1000}')
  rss_mib=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.1f", $1/1024}')
  min=$(printf '%s\n' "${walls[@]}" | sort -n | head -1 | awk '{printf "%.1f", $1/1000}')
  max=$(printf '%s\n' "${walls[@]}" | sort -n | tail -1 | awk '{printf "%.1f", $1/1000}')
  printf '%-34s %9s ms %9s MiB   (%d runs, %s-%s ms)\n' "$name" "$wall_ms" "$rss_mib" "$runs" "$min" "$max"
  eval "${name//[^a-z0-9]/_}_ms=$wall_ms"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
printf '%-34s %12s %13s\n' "" "wall median" "peak RSS"
measure "attest --help" 20 "$attest" --help
measure "check, 1 object (start-up)" 20 "$attest" "${check[@]}" "$work/one.yaml"
measure "check, 1,000 manifests" 10 "$attest" "${check[@]}" "$work/m1000"
measure "check, 10,000 manifests" 3 "$attest" "${check[@]}" "$work/m10000"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2154 # set by measure
awk -v s="$check__1_object__start_up__ms" -v a="$check__1_000_manifests_ms" -v b="$check__10_000_manifests_ms" 'BEGIN {
  printf "per manifest after start-up: %.1f us at 1,000, %.1f us at 10,000 (10,000/1,000 wall: %.1fx)\n", (a-s)/1000*1000, (b-s)/10000*1000, b/a
  printf "targets: start-up <= 20 ms, 1,000 manifests <= 110 ms and <= 60 MiB, linear to 10,000\n" }'
