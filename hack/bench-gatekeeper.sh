#!/usr/bin/env bash
# The per-object cost of a Rego ConstraintTemplate in `attest policy check` against Gatekeeper's `gator test`
# v3.23.1 on the same corpus: hack/gator/rego-template.yaml (privileged containers of every pod spec) over
# hack/genmanifests' mixed manifests (Pods, Deployments, StatefulSets, CronJobs; ~14% privileged), in one stream
# of 1,000 and of 10,000 objects. Both read the template and constraint among their inputs and put every input into
# data.inventory, as gator test does; attest runs only the constraint's policy (--policy), offline.
# Per-object cost is (wall at 10,000 - wall at 1,000) / 9,000: start-up and template compilation cancel out.
# The violation counts of both are compared first: the figures are only worth reading when they agree.
#
#   hack/bench-gatekeeper.sh ATTEST_BINARY GATOR_BINARY   (make bench-gatekeeper builds and installs both)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$1" "$work/attest"
# The lean build (make build's bin/attest) runs a check with Gatekeeper documents in attest-full beside it.
if [[ -x $(dirname "$1")/attest-full ]]; then cp "$(dirname "$1")/attest-full" "$work/attest-full"; fi
cp "$2" "$work/gator"
attest=$work/attest
gator=$work/gator
template=hack/gator/rego-template.yaml
for n in 1000 10000; do go run ./hack/genmanifests -n "$n" -stream "$work/s$n.yaml"; done

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# wall RUNS CMD...: the median wall time in ms of RUNS runs after a warm-up (exit 1, "denied", is expected).
wall() {
  local runs=$1 i t0 t1 walls=()
  shift
  "$@" > /dev/null 2>&1 || [[ $? == 1 ]]
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    "$@" > /dev/null 2>&1 || [[ $? == 1 ]]
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000 ))")
  done
  printf '%s\n' "${walls[@]}" | median | awk '{printf "%.1f", $1/1000}'
}

attest_check() { "$attest" policy check --offline --policy BenchRegoNoPrivileged/no-privileged -f "$template" -f "$1"; }
gator_test() { "$gator" test -f "$template" -f "$1"; }

for n in 1000 10000; do
  a=$("$attest" policy check --offline --format json --policy BenchRegoNoPrivileged/no-privileged -f "$template" -f "$work/s$n.yaml" 2>/dev/null | sed -n 's/^  "violations": \([0-9]*\),$/\1/p' || true)
  g=$(gator_test "$work/s$n.yaml" 2>/dev/null | grep -c 'Message:' || true)
  echo "$n objects: attest $a violations, gator $g"
  if [[ $a != "$g" ]]; then echo "the verdicts differ: no figures"; exit 1; fi
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
a1=$(wall 5 attest_check "$work/s1000.yaml")
a10=$(wall 3 attest_check "$work/s10000.yaml")
g1=$(wall 5 gator_test "$work/s1000.yaml")
g10=$(wall 3 gator_test "$work/s10000.yaml")
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %14s %22s\n' "" "1,000 (ms)" "10,000 (ms)" "per object (us)"
awk -v a1="$a1" -v a10="$a10" -v g1="$g1" -v g10="$g10" 'BEGIN {
  pa = (a10 - a1) * 1000 / 9000; pg = (g10 - g1) * 1000 / 9000
  printf "%-8s %14.1f %14.1f %22.1f\n", "attest", a1, a10, pa
  printf "%-8s %14.1f %14.1f %22.1f\n", "gator", g1, g10, pg
  printf "attest per object: %.2fx gator'"'"'s\n", pa / pg }'
