#!/usr/bin/env bash
# Builds every plugin in plugins/ to a wasm32-wasip2 component and copies it
# to plugins/dist/, which the example manifests and the tests use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}

# rust-toolchain.toml names the target, but with RUSTUP_AUTO_INSTALL=0 rustup
# will not fetch it by itself.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "weir: installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi

plugins=(sensor-average window-stats collect-list faulty)
args=()
for p in "${plugins[@]}"; do args+=(-p "$p"); done
cargo build --quiet --profile plugin --target wasm32-wasip2 "${args[@]}"

mkdir -p plugins/dist
for p in "${plugins[@]}"; do
    file="${p//-/_}.wasm"
    built="$CARGO_TARGET_DIR/wasm32-wasip2/plugin/$file"
    if ! cmp -s "$built" "plugins/dist/$file"; then
        cp "$built" "plugins/dist/$file"
    fi
done
echo "weir: plugins ready in plugins/dist ($(ls plugins/dist | tr '\n' ' '))" >&2
