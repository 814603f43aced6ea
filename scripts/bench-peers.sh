#!/usr/bin/env bash
# Side by side, same file, same job, same run: Bytewax 0.21.1 (from PyPI,
# in a cached virtualenv) against weir with the Rust, the Python and the
# JavaScript plugin (one worker each, as Bytewax; the Rust job also on two
# workers). The job: JSON telemetry lines, key by device, event clock,
# 60 s tumbling windows, count/mean/min/max of `temp`, a JSON line per
# window into a file. Prints each wall time (weir: the median of three
# runs) and the ratios to Bytewax, and
# checks that every run wrote the same number of windows. Each weir run's
# plugin is compiled before the clock starts (`weir check`), as any run
# after the first finds it in the compiled-code cache.
#
#   bash scripts/bench-peers.sh [RECORDS=1000000] [KEYS=100]
#
# Quix Streams is not in this file benchmark: it has no path without a
# Kafka broker (DESIGN.md has its figure from Kafka).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
records=${1:-1000000}
keys=${2:-100}
for n in "$records" "$keys"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench-peers: RECORDS and KEYS must be positive whole numbers, got \`$n\`" >&2; exit 2; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
tools=${WEIR_TOOLS_DIR:-$HOME/.cache/weir/tools}
peers=$tools/peers
work=$HOME/.cache/weir/bench
mkdir -p "$work"

command -v python3 >/dev/null || { echo "bench-peers: python3 is needed (for Bytewax and the input generator)" >&2; exit 1; }
if ! "$peers/bin/python" -c "import bytewax" 2>/dev/null; then
    echo "bench-peers: installing bytewax 0.21.1 from PyPI into $peers" >&2
    python3 -m venv "$peers"
    "$peers/bin/pip" install --quiet bytewax==0.21.1
fi

input=$work/telemetry-$records-$keys.jsonl
if [ ! -f "$input" ]; then
    echo "bench-peers: writing $records lines over $keys devices to $input" >&2
    python3 scripts/peers/generate.py "$input.tmp" "$records" "$keys"
    mv "$input.tmp" "$input"
fi

bash scripts/build-plugins.sh
echo "bench-peers: building weir (release)" >&2
cargo build --quiet --release --bin weir
weir=$CARGO_TARGET_DIR/release/weir

manifest() { # plugin file, output file
    cat <<EOF
name = "bench-peers"
[source]
kind = "jsonl"
path = "$input"
[stages]
plugin = "$root/plugins/dist/$1"
config = { value_field = "temp" }
[stages.deserialize]
builtin = "json"
[stages.key]
field = "device"
[clock]
kind = "event"
time_field = "ts"
wait_for_system_duration = "0s"
[window]
kind = "tumbling"
length = "60s"
align_to = "2020-01-01T00:00:00Z"
[sink]
kind = "file"
path = "$2"
[dead_letter]
kind = "log"
EOF
}

# Wall seconds of a command, its output discarded.
wall() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

# The median wall of three runs: weir's runs last well under a second, where
# this machine's noise is tens of percent (Bytewax's several seconds run once).
wall3() {
    local a b c
    a=$(wall "$@") && b=$(wall "$@") && c=$(wall "$@") || return 1
    python3 -c "print(sorted([$a, $b, $c])[1])"
}

echo "bench-peers: $records records, $keys keys, 60 s windows, file in, file out; same machine, same file; Bytewax once, each weir job the median of three"
rm -f "$work"/out-*.jsonl
bytewax=$(cd scripts/peers && IN=$input OUT=$work/out-bytewax.jsonl wall "$peers/bin/python" -m bytewax.run bytewax_job:flow)
manifest window_stats.wasm "$work/out-rust.jsonl" >"$work/rust.toml"
manifest window_stats_py.wasm "$work/out-python.jsonl" >"$work/python.toml"
manifest window_stats_js.wasm "$work/out-javascript.jsonl" >"$work/javascript.toml"
for language in rust python javascript; do
    "$weir" --log warn check "$work/$language.toml" >/dev/null
done
# One worker each, as Bytewax runs here; the Rust job also on two.
rust=$(wall3 "$weir" --log warn run --workers 1 "$work/rust.toml")
manifest window_stats.wasm "$work/out-rust2.jsonl" >"$work/rust2.toml"
rust2=$(wall3 "$weir" --log warn run --workers 2 "$work/rust2.toml")
python=$(wall3 "$weir" --log warn run --workers 1 "$work/python.toml")
javascript=$(wall3 "$weir" --log warn run --workers 1 "$work/javascript.toml")

windows() { wc -l <"$1" | tr -d ' '; }
printf '%-34s %9s %12s %14s %9s\n' run wall records/s "vs Bytewax" windows
for run in "Bytewax 0.21.1, one worker:$bytewax:bytewax" "weir, Rust plugin:$rust:rust" "weir, Rust plugin, 2 workers:$rust2:rust2" "weir, Python plugin:$python:python" "weir, JavaScript plugin:$javascript:javascript"; do
    IFS=: read -r name secs file <<<"$run"
    python3 -c "
secs, bytewax, n = $secs, $bytewax, $records
print(f'{\"$name\":<34} {secs:>8.2f}s {n / secs:>12,.0f} {bytewax / secs:>13.2f}x {\"$(windows "$work/out-$file.jsonl")\":>9}')"
done
if [ "$(windows "$work/out-bytewax.jsonl")" != "$(windows "$work/out-rust.jsonl")" ] || [ "$(windows "$work/out-rust.jsonl")" != "$(windows "$work/out-python.jsonl")" ] \
    || [ "$(windows "$work/out-rust.jsonl")" != "$(windows "$work/out-javascript.jsonl")" ] || [ "$(windows "$work/out-rust.jsonl")" != "$(windows "$work/out-rust2.jsonl")" ]; then
    echo "bench-peers: the runs wrote different numbers of windows" >&2
    exit 1
fi
