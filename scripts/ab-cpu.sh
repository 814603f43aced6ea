#!/usr/bin/env bash
# Compares two weir binaries on one manifest by the CPU time they take,
# run side by side: A and B at the same time, one pinned to each core,
# the cores swapped each run, so both see the same machine at the same
# moment. On a noisy VM (identical runs alone range ±25% here) this is
# the comparison that holds still; see docs/performance.md, session 21.
#
#   bash scripts/ab-cpu.sh RUNS MANIFEST A B
#
# Prints each run's user+system seconds and B/A, then the median B/A.
# The manifest's file sink path gets .A / .B appended for each binary;
# compare the outputs sorted (close rounds follow system time).
set -euo pipefail
if [[ $# -ne 4 ]]; then
  echo "usage: $0 RUNS MANIFEST A B" >&2
  exit 2
fi
runs=$1 manifest=$2 a=$3 b=$4
for bin in "$a" "$b"; do
  [[ -x $bin ]] || { echo "ab-cpu: $bin is not an executable" >&2; exit 2; }
done
[[ -f $manifest ]] || { echo "ab-cpu: no manifest $manifest" >&2; exit 2; }
out=$(sed -n '/^\[sink\]/,/^\[/s/^path = "\(.*\)"$/\1/p' "$manifest")
[[ -n $out ]] || { echo "ab-cpu: $manifest has no [sink] path = \"...\" line" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in A B; do
  sed "s#$out#$out.$side#" "$manifest" > "$work/$side.toml"
done
ratios=()
for r in $(seq "$runs"); do
  if (( r % 2 )); then ca=0 cb=1; else ca=1 cb=0; fi
  rm -f "$out.A" "$out.B"
  sync
  /usr/bin/time -o "$work/A.t" -f "%U %S" taskset -c "$ca" "$a" --log error run --workers 1 "$work/A.toml" > /dev/null 2>&1 &
  /usr/bin/time -o "$work/B.t" -f "%U %S" taskset -c "$cb" "$b" --log error run --workers 1 "$work/B.toml" > /dev/null 2>&1 &
  wait
  ua=$(awk '{print $1 + $2}' "$work/A.t")
  ub=$(awk '{print $1 + $2}' "$work/B.t")
  q=$(awk -v a="$ua" -v b="$ub" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$q")
  echo "run $r (A on core $ca): A ${ua}s  B ${ub}s  B/A $q"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "B/A median of $runs: $median"
