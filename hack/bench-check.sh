#!/usr/bin/env bash
# Times `attest policy check` with exactly no-privileged and trusted-registries (--policy selects them; the other
# library policies are off) side by side with Gatekeeper's `gator test` v3.23.1 running the same two policies as
# CEL ConstraintTemplates (hack/gator/templates.yaml), on the same generated corpus of mixed manifests
# (hack/genmanifests: Pods, 3-container Deployments, StatefulSets, CronJobs, ~31% violating):
#   - start-up: one object;
#   - 1,000 and 10,000 objects in ONE multi-document stream on stdin, as `kustomize build | attest policy check -f -`
#     feeds it (gator reads the same stream from a file: it reads stdin whole too);
#   - 100,000 objects in one stream (attest only: gator holds every object and takes minutes);
#   - 10,000 objects one file each (attest only, the shape the old benchmark measured).
# Each figure is the median wall time (including start-up) and peak RSS (/usr/bin/time %M) of several runs; the
# load average before and after says how much other work shared the CPU.
#
#   hack/bench-check.sh [ATTEST_BINARY] [GATOR_BINARY]   (`make bench` builds both; without gator only attest runs)
#
# The binaries are copied first: a file the Go linker has just written maps more of itself per page fault than an
# installed one, which adds ~6 MiB to every RSS figure.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/attest}
gator_bin=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/attest"
attest=$work/attest
gator=
if [[ -n $gator_bin && -x $gator_bin ]]; then
  cp "$gator_bin" "$work/gator"
  gator=$work/gator
fi
for n in 1000 10000 100000; do go run ./hack/genmanifests -n "$n" -stream "$work/s$n.yaml"; done
go run ./hack/genmanifests -n 10000 -dir "$work/m10000"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: one}\nspec:\n  containers:\n  - {name: a, image: gcr.io/company/a:1}\n' > "$work/one.yaml"
cat > "$work/policies.yaml" <<'CFG'
policies:
  - name: trusted-registries
    parameters:
      trusted_registries: [gcr.io/company, docker.io/library]
CFG
check=(policy check --config "$work/policies.yaml" --policy no-privileged --policy trusted-registries -f)
templates=hack/gator/templates.yaml

# median of the numbers on stdin
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# measure NAME RUNS STDIN CMD...: RUNS timed runs after one warm-up, stdin from the file STDIN (or /dev/null);
# prints the median wall time (ms), the median peak RSS (MiB) and the spread of the wall times, and sets
# <name>_ms. Exit status 1 ("would be denied") is expected.
measure() {
  local name=$1 runs=$2 in=$3
  shift 3
  local walls=() rss=() i t0 t1
  "$@" < "$in" > /dev/null 2>&1 || [[ $? == 1 ]]
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" < "$in" > /dev/null 2>&1 || [[ $? == 1 ]]
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000 ))")
    rss+=("$(tail -1 "$work/rss")")
  done
  local wall_ms rss_mib min max
  wall_ms=$(printf '%s\n' "${walls[@]}" | median | awk '{printf "%.1f", $1/1000}')
  rss_mib=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.1f", $1/1024}')
  min=$(printf '%s\n' "${walls[@]}" | sort -n | head -1 | awk '{printf "%.1f", $1/1000}')
  max=$(printf '%s\n' "${walls[@]}" | sort -n | tail -1 | awk '{printf "%.1f", $1/1000}')
  printf '%-40s %9s ms %9s MiB   (%d runs, %s-%s ms)\n' "$name" "$wall_ms" "$rss_mib" "$runs" "$min" "$max"
  printf -v "${name//[^a-z0-9]/_}_ms" '%s' "$wall_ms"
}

# wall_us STDIN CMD...: one run's wall time in microseconds (exit status 1, "would be denied", is expected).
wall_us() {
  local in=$1 t0 t1
  shift
  t0=$(date +%s%N)
  "$@" < "$in" > /dev/null 2>&1 || [[ $? == 1 ]]
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}

# paired NAME RUNS STDIN ATTEST_CMD GATOR_CMD (names of arrays): RUNS pairs of one attest run and one gator run, one
# right after the other, so both share whatever else the machine is doing then; prints the median of the pairs'
# attest/gator ratios and sets <name>_ratio. The two blocks of runs above drift apart when the load changes.
paired() {
  local name=$1 runs=$2 in=$3
  local -n acmd=$4 gcmd=$5
  local ratios=() i a g
  for ((i = 0; i < runs; i++)); do
    a=$(wall_us "$in" "${acmd[@]}")
    g=$(wall_us /dev/null "${gcmd[@]}")
    ratios+=("$(awk -v a="$a" -v g="$g" 'BEGIN {printf "%.4f", a/g}')")
  done
  printf -v "${name}_ratio" '%s' "$(printf '%s\n' "${ratios[@]}" | median)"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
printf '%-40s %12s %13s\n' "" "wall median" "peak RSS"
measure "attest --help" 10 /dev/null "$attest" --help
measure "attest start-up (1 object)" 10 /dev/null "$attest" "${check[@]}" "$work/one.yaml"
measure "attest 1,000 in one stream" 7 "$work/s1000.yaml" "$attest" "${check[@]}" -
measure "attest 10,000 in one stream" 3 "$work/s10000.yaml" "$attest" "${check[@]}" -
measure "attest 100,000 in one stream" 1 "$work/s100000.yaml" "$attest" "${check[@]}" -
measure "attest 10,000 one file each" 3 /dev/null "$attest" "${check[@]}" "$work/m10000"
if [[ -n $gator ]]; then
  measure "gator start-up (1 object)" 10 /dev/null "$gator" test -f "$templates" -f "$work/one.yaml"
  measure "gator 1,000 in one stream" 7 /dev/null "$gator" test -f "$templates" -f "$work/s1000.yaml"
  measure "gator 10,000 in one stream" 3 /dev/null "$gator" test -f "$templates" -f "$work/s10000.yaml"
fi
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2154 # set by measure
awk -v a1="$attest_1_000_in_one_stream_ms" -v a10="$attest_10_000_in_one_stream_ms" -v a100="$attest_100_000_in_one_stream_ms" 'BEGIN {
  printf "attest: 10,000/1,000 wall %.1fx (target <= 11x), 100,000/10,000 wall %.1fx\n", a10/a1, a100/a10 }'
if [[ -n $gator ]]; then
  # shellcheck disable=SC2154 # set by measure
  awk -v as="$attest_start_up__1_object__ms" -v gs="$gator_start_up__1_object__ms" \
    -v a1="$attest_1_000_in_one_stream_ms" -v g1="$gator_1_000_in_one_stream_ms" \
    -v a10="$attest_10_000_in_one_stream_ms" -v g10="$gator_10_000_in_one_stream_ms" 'BEGIN {
    printf "against gator (CEL): start-up %.2fx its time (target <= 0.5x); 1,000 in one stream %.1fx faster, 10,000 %.1fx faster (target >= 3x)\n", as/gs, g1/a1, g10/a10 }'
  # shellcheck disable=SC2034 # read by paired through namerefs
  {
    a_one=("$attest" "${check[@]}" "$work/one.yaml")
    a_stream=("$attest" "${check[@]}" -)
    g_one=("$gator" test -f "$templates" -f "$work/one.yaml")
    g_1000=("$gator" test -f "$templates" -f "$work/s1000.yaml")
    g_10000=("$gator" test -f "$templates" -f "$work/s10000.yaml")
  }
  paired start 10 /dev/null a_one g_one
  paired s1000 7 "$work/s1000.yaml" a_stream g_1000
  paired s10000 3 "$work/s10000.yaml" a_stream g_10000
  # shellcheck disable=SC2154 # set by paired
  awk -v s="$start_ratio" -v r1="$s1000_ratio" -v r10="$s10000_ratio" 'BEGIN {
    printf "against gator, alternating runs (median of each pair'"'"'s ratio): start-up %.2fx its time, 1,000 in one stream %.1fx faster, 10,000 %.1fx faster\n", s, 1/r1, 1/r10 }'
fi
echo "targets: 10,000 in one stream <= 80 MiB peak RSS, the same peak at 100,000"
