#!/usr/bin/env bash
# The whole test suite: builds the plugins, then every crate's tests (host
# unit tests, guest SDK and plugin unit tests natively, end-to-end pipelines).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
bash scripts/build-plugins.sh
python3 examples/reference_check.py
cargo test --workspace --no-fail-fast "$@"
