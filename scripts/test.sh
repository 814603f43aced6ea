#!/usr/bin/env bash
# The whole test suite: builds the plugins, starts Kafka and DynamoDB Local,
# then runs every crate's tests (host unit tests, guest SDK and plugin unit
# tests natively, end-to-end pipelines against the real servers).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
bash scripts/build-plugins.sh
python3 examples/reference_check.py
# A real browser for the profile report test (Debian's chromium), installed
# once; without it that test fails saying so.
if ! command -v chromium >/dev/null 2>&1; then
    echo "weir: installing chromium (apt-get) for the report test" >&2
    apt_get=(apt-get); [ "$(id -u)" -eq 0 ] || apt_get=(sudo -n apt-get)
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium >/dev/null 2>&1 \
        || { DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium >/dev/null 2>&1; } \
        || echo "weir: could not install chromium; the report test will fail" >&2
fi
# Real Kafka (tansu) and DynamoDB Local on free loopback ports, for the
# end-to-end tests; stopped however the tests end.
trap 'bash scripts/services.sh stop' EXIT
eval "$(bash scripts/services.sh start)"
log=$(mktemp)
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The test plugin's state-version-2 build has its own unit tests.
cargo test -p faulty --features v2 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# The Python plugin's functions as plain Python (no wasm), as its author runs them.
(cd plugins/window-stats-py && PYTHONPATH="$root/sdk/python" PYTHONDONTWRITEBYTECODE=1 python3 test_app.py) 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# Every plugin's compiled component against its cases, in the real host.
for cases in plugins/*/cases.toml; do
    name=$(basename "$(dirname "$cases")")
    "$CARGO_TARGET_DIR/debug/weir" --log error test "plugins/dist/${name//-/_}.wasm" --cases "$cases" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
set -e
# The benchmarks are not run here (they are measurements, not tests), but
# they must keep compiling.
cargo build --quiet --workspace --benches
bash scripts/services.sh stop
# One closing line for the whole suite (cargo's last line is often a crate
# with no doctests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     /^[0-9]+ cases passed, [0-9]+ failed$/ { p += $1; f += $4 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
