#!/usr/bin/env bash
# Regenerates the expected outputs of examples/windows/ (sliding and
# session windows) with Bytewax 0.21.1 itself, installed from PyPI into the
# cached peers virtualenv. The golden tests only compare against them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${WEIR_TOOLS_DIR:-$HOME/.cache/weir/tools}
peers=$tools/peers
if ! "$peers/bin/python" -c 'import bytewax' 2>/dev/null; then
    echo "golden-bytewax: installing Bytewax 0.21.1 into $peers" >&2
    python3 -m venv "$peers"
    "$peers/bin/pip" install --quiet bytewax==0.21.1
fi
"$peers/bin/python" examples/windows/bytewax_windows.py
