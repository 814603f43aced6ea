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

plugins=(sensor-average window-stats profile collect-list faulty liar)
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
# Variants of the test plugin for the hot-swap tests, each its own file.
for feature in v2 trap-on-start; do
    cargo build --quiet --profile plugin --target wasm32-wasip2 -p faulty --features "$feature"
    file="faulty_${feature//-/_}.wasm"
    if ! cmp -s "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/faulty.wasm" "plugins/dist/$file"; then
        cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/faulty.wasm" "plugins/dist/$file"
    fi
done

# A component of another world (a WASI command), which a swap must refuse.
cargo build --quiet --profile plugin --target wasm32-wasip2 -p wrong-world
if ! cmp -s "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/wrong-world.wasm" plugins/dist/wrong_world.wasm; then
    cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/wrong-world.wasm" plugins/dist/wrong_world.wasm
fi

# The Python plugin, with `weir build` (componentize-py from PyPI in a
# cached virtualenv); rebuilt only when its source, the SDK or the WIT changed.
stamp=$(cat plugins/window-stats-py/app.py sdk/python/weir/*.py wit/stream.wit | sha256sum | cut -c1-16)
if [ ! -f plugins/dist/window_stats_py.wasm ] || [ "$(cat plugins/dist/.window_stats_py.stamp 2>/dev/null)" != "$stamp" ]; then
    cargo build --quiet --workspace --bin weir
    "$CARGO_TARGET_DIR/debug/weir" --log error build plugins/window-stats-py/app.py -o plugins/dist/window_stats_py.wasm >/dev/null
    echo "$stamp" > plugins/dist/.window_stats_py.stamp
fi

# The JavaScript plugin, with `weir build` (componentize-js from npm in a
# cached folder); rebuilt only when its source or the WIT changed.
stamp=$(cat plugins/window-stats-js/app.js wit/stream.wit host/src/build/javascript.rs | sha256sum | cut -c1-16)
if [ ! -f plugins/dist/window_stats_js.wasm ] || [ "$(cat plugins/dist/.window_stats_js.stamp 2>/dev/null)" != "$stamp" ]; then
    cargo build --quiet --workspace --bin weir
    "$CARGO_TARGET_DIR/debug/weir" --log error build plugins/window-stats-js/app.js -o plugins/dist/window_stats_js.wasm >/dev/null
    echo "$stamp" > plugins/dist/.window_stats_js.stamp
fi

echo "weir: plugins ready in plugins/dist ($(ls plugins/dist | tr '\n' ' '))" >&2
