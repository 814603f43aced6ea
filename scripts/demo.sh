#!/usr/bin/env bash
# Runs seed 001 on its embedded input (the real telemetry CSV, no services):
# per-device 1 h windows of temperature, one JSON line per window.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
bash scripts/build-plugins.sh
cargo run --quiet -p weir -- run "${1:-examples/seed-001-telemetry/pipeline.toml}"
