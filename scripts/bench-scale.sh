#!/usr/bin/env bash
# How weir's cost grows with keys (open windows) and what a second core
# gives, every figure with its baseline from the same run. The job is the
# side-by-side one (JSON telemetry lines, key by device, event clock,
# count/mean/min/max of `temp` with the Rust window-stats plugin, file in,
# file out), on three inputs of RECORDS lines:
#
#   100 keys, 60 s windows        the baseline
#   100,000 keys, 60 s windows    the same job with 1,000x the keys (it
#                                 also writes ~58x the windows: each key
#                                 has ~10 readings in 10,000 s)
#   100,000 keys, 10,000 s windows  as many windows written as 100 keys
#                                 with 10 s windows (also run): the
#                                 difference is open windows alone
#
# each with --workers 1 and --workers 2, and with --workers 1 pinned to one
# core (taskset -c 0: the reading thread and the worker share it — the
# job's 1-core speed, the baseline for what the second core gives). The
# second core is also given as the median of each run's own ratio (its
# configurations run back to back). Prints the median of RUNS runs,
# records/s, the ratios, peak RSS and the memory per open window, and
# checks that 1 and 2 workers write the same windows (with a 1 h wait, so
# that no record is late in one run and not the other). Every job holds
# events back from the fold as the default `limits.fold_buffer` says;
# memory per open window is also taken with none held.
#
#   bash scripts/bench-scale.sh [RECORDS=1000000] [RUNS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
records=${1:-1000000}
runs=${2:-3}
for n in "$records" "$runs"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench-scale: RECORDS and RUNS must be positive whole numbers, got \`$n\`" >&2; exit 2; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
work=$HOME/.cache/weir/bench
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "bench-scale: needs GNU time (/usr/bin/time; Debian package \`time\`) for peak memory" >&2; exit 1; }

for keys in 100 100000; do
    input=$work/telemetry-$records-$keys.jsonl
    if [ ! -f "$input" ]; then
        echo "bench-scale: writing $records lines over $keys devices to $input" >&2
        python3 scripts/peers/generate.py "$input.tmp" "$records" "$keys"
        mv "$input.tmp" "$input"
    fi
done

bash scripts/build-plugins.sh
echo "bench-scale: building weir (release)" >&2
cargo build --quiet --release --bin weir
weir=$CARGO_TARGET_DIR/release/weir

manifest() { # keys, window length, output file[, wait[, fold_buffer]]
    cat <<EOF
name = "bench-scale"
[source]
kind = "jsonl"
path = "$work/telemetry-$records-$1.jsonl"
[stages]
plugin = "$root/plugins/dist/window_stats.wasm"
config = { value_field = "temp" }
[stages.deserialize]
builtin = "json"
[stages.key]
field = "device"
[clock]
kind = "event"
time_field = "ts"
wait_for_system_duration = "${4:-0s}"
[window]
kind = "tumbling"
length = "$2"
align_to = "2020-01-01T00:00:00Z"
[sink]
kind = "file"
path = "$3"
[dead_letter]
kind = "log"
${5:+[limits]
fold_buffer = $5}
EOF
}

jobs=("100:60s" "100000:60s" "100:10s" "100000:10000s")
for job in "${jobs[@]}"; do
    IFS=: read -r keys length <<<"$job"
    for workers in 1 2 1c; do
        manifest "$keys" "$length" "$work/scale-out-$keys-$length-w$workers.jsonl" >"$work/scale-$keys-$length-w$workers.toml"
    done
done
"$weir" --log warn check "$work/scale-100-60s-w1.toml" >/dev/null

# One run: wall seconds, peak RSS (KiB), most windows open at once,
# windows written, CPU seconds (user and system).
measure() { # manifest, workers (1c: one worker pinned to one core)
    local log=$work/scale-last.log pin=()
    local workers=$2
    if [ "$workers" = 1c ]; then pin=(taskset -c 0); workers=1; fi
    /usr/bin/time -f "time %e %M %U %S" "${pin[@]}" "$weir" --log info run --workers "$workers" "$1" >/dev/null 2>"$log" || { cat "$log" >&2; return 1; }
    python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall, rss, user, system = re.search(r"^time ([0-9.]+) ([0-9]+) ([0-9.]+) ([0-9.]+)$", text, re.M).groups()
# The run's summary line (progress lines also count windows).
windows, open_peak = re.search(r"([0-9]+) windows written \(at most ([0-9]+) open at once\)", text).groups()
print(wall, rss, open_peak, windows, f"{float(user) + float(system):.2f}")
PY
}

results=$work/scale-results.txt
: >"$results"
echo "bench-scale: $records records; $runs runs of each, interleaved; medians" >&2
for run in $(seq "$runs"); do
    for job in "${jobs[@]}"; do
        IFS=: read -r keys length <<<"$job"
        for workers in 1 2 1c; do
            echo "$keys $length $workers $(measure "$work/scale-$keys-$length-w$workers.toml" "$workers") $run" >>"$results"
        done
    done
    echo "bench-scale: run $run of $runs done" >&2
done

# Memory per open window, the windows alone: the same two jobs with no
# events held back from the fold (what is held is not per window).
for job in 100:10s 100000:10000s; do
    IFS=: read -r keys length <<<"$job"
    manifest "$keys" "$length" "$work/scale-nohold-out-$keys.jsonl" 0s 0 >"$work/scale-nohold-$keys.toml"
    echo "$keys $length nohold $(measure "$work/scale-nohold-$keys.toml" 1) 1" >>"$results"
done

# Same windows from 1 and 2 workers. With no wait, system time moves the
# watermarks (Bytewax's clock), so a record can be late in one run and not
# in another; with a wait of an hour nothing is late and the windows must
# be the same byte for byte.
for keys in 100 100000; do
    for workers in 1 2; do
        manifest "$keys" 60s "$work/scale-same-$keys-w$workers.jsonl" 1h >"$work/scale-same-$keys-w$workers.toml"
        "$weir" --log warn run --workers "$workers" "$work/scale-same-$keys-w$workers.toml" >/dev/null
    done
    if ! cmp -s <(sort "$work/scale-same-$keys-w1.jsonl") <(sort "$work/scale-same-$keys-w2.jsonl"); then
        echo "bench-scale: $keys keys: 1 and 2 workers wrote different windows ($work/scale-same-$keys-w*.jsonl)" >&2
        exit 1
    fi
done

python3 - "$results" "$records" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
n = int(sys.argv[2])
def med(keys, length, workers, col):
    return statistics.median(float(r[col]) for r in rows if (r[0], r[1], r[2]) == (keys, length, workers))
def rate(keys, length, workers):
    return n / med(keys, length, workers, 3)
print("workers 1c: one worker pinned to one core (taskset -c 0)")
print(f"{'keys':>8} {'window':>7} {'workers':>7} {'wall':>7} {'records/s':>11} {'windows':>8} {'open peak':>9} {'RSS MiB':>8} {'CPU':>6}")
for keys, length in [("100", "60s"), ("100000", "60s"), ("100", "10s"), ("100000", "10000s")]:
    for w in ("1c", "1", "2"):
        print(f"{int(keys):>8,} {length:>7} {w:>7} {med(keys, length, w, 3):>6.2f}s {rate(keys, length, w):>11,.0f} {int(med(keys, length, w, 6)):>8,} {int(med(keys, length, w, 5)):>9,} {med(keys, length, w, 4) / 1024:>8.1f} {med(keys, length, w, 7):>5.2f}s")
print()
print("cost of keys (records/s of 100,000 keys / 100 keys; 1 worker, and 1 worker pinned to one core):")
for label, long in [("60 s windows (58x the windows written):     ", "60s"), ("same windows written, open windows differ: ", "10000s")]:
    short = "60s" if long == "60s" else "10s"
    print(f"  {label}  {rate('100000', long, '1') / rate('100', short, '1'):.2f}x  (pinned {rate('100000', long, '1c') / rate('100', short, '1c'):.2f}x)")
# The same windows, pinned: each run's own ratio (both jobs measured in
# that run), and the ratio of CPU seconds (user and system: what the job
# cost, whatever else the machine did meanwhile).
def one_core(keys, length, col):
    return {r[8]: float(r[col]) for r in rows if (r[0], r[1], r[2]) == (keys, length, "1c")}
few, many = one_core("100", "10s", 3), one_core("100000", "10000s", 3)
ratios = sorted(few[run] / many[run] for run in few if run in many)
print(f"  same windows written, pinned, median of the runs' paired ratios: {statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}); in CPU time: {med('100', '10s', '1c', 7) / med('100000', '10000s', '1c', 7):.2f}x")
# Each run measures a job's three configurations back to back, so the
# ratio within a run is taken at one moment of a machine whose speed
# drifts; the median of those ratios is steadier than a ratio of medians.
def paired(keys, length):
    wall = {(r[2], r[8]): float(r[3]) for r in rows if (r[0], r[1]) == (keys, length)}
    ratios = sorted(wall[("1c", run)] / wall[("2", run)] for (w, run) in wall if w == "2")
    return statistics.median(ratios), ratios[0], ratios[-1]
print("second core (records/s with 2 workers on 2 cores / 1 worker on 1 core; / 1 worker unpinned;")
print("  median of the runs' paired ratios, lowest and highest):")
for keys, length in [("100", "60s"), ("100000", "60s"), ("100", "10s"), ("100000", "10000s")]:
    mid, low, high = paired(keys, length)
    print(f"  {int(keys):>7,} keys, {length:>6} windows: {rate(keys, length, '2') / rate(keys, length, '1c'):.2f}x  ({rate(keys, length, '2') / rate(keys, length, '1'):.2f}x)  paired {mid:.2f}x ({low:.2f}-{high:.2f})")
extra_rss = (med("100000", "10000s", "1", 4) - med("100", "10s", "1", 4)) * 1024
extra_open = med("100000", "10000s", "1", 5) - med("100", "10s", "1", 5)
print(f"memory per open window (RSS difference / open-window difference, 1 worker): {extra_rss / extra_open:.0f} bytes with the events held back from the fold,")
alone_rss = (med("100000", "10000s", "nohold", 4) - med("100", "10s", "nohold", 4)) * 1024
alone_open = med("100000", "10000s", "nohold", 5) - med("100", "10s", "nohold", 5)
print(f"  {alone_rss / alone_open:.0f} bytes with none held (fold_buffer = 0: the windows alone)")
print("1 and 2 workers wrote the same windows (sorted outputs equal, 100 and 100,000 keys, 1 h wait)")
PY
