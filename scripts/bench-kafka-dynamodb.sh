#!/usr/bin/env bash
# Records per second from Kafka to DynamoDB Local: the seed 001 telemetry,
# repeated REPEAT times (each copy 30 minutes later), produced into a
# 3-partition topic, then read by weir (window-stats plugin, 1 h windows)
# with its results written to DynamoDB Local. Prints weir's own figure and,
# as the baseline in the same run, a bare librdkafka consumer's rate on the
# same topic (confluent-kafka from PyPI, in the cached peers virtualenv:
# poll and count, nothing else).
#   bash scripts/bench-kafka-dynamodb.sh [REPEAT]   (default 100: 99,900 records)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
repeat=${1:-100}
bash scripts/build-plugins.sh
cargo build --quiet --release -p weir --bin weir
weir="$CARGO_TARGET_DIR/release/weir"
trap 'bash scripts/services.sh stop' EXIT
eval "$(bash scripts/services.sh start)"

work=$(mktemp -d)
python3 - "$repeat" "$work/telemetry.jsonl" <<'PY'
import csv, json, sys
repeat, out = int(sys.argv[1]), sys.argv[2]
rows = list(csv.DictReader(open("examples/seed-001-telemetry/iot_telemetry_data_1000.csv")))
with open(out, "w") as f:
    for rep in range(repeat):
        for row in rows:
            f.write(json.dumps(dict(row, ts=str(float(row["ts"]) + 1800 * rep))) + "\n")
PY
topic="bench-$$"
"$weir" produce --topic "$topic" --partitions 3 --replay "$work/telemetry.jsonl" --key-field device
cat > "$work/pipeline.toml" <<TOML
[source]
kind = "kafka"
brokers = "\${WEIR_KAFKA_BROKERS}"
topics = ["$topic"]
group_id = "bench-$$"
exit_when_idle = "3s"
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
wait_for_system_duration = "30s"
[window]
kind = "tumbling"
length = "1h"
align_to = "2020-01-01T00:00:00Z"
[sink]
kind = "dynamodb"
table = "bench-$$"
partition_key = "key"
create_table = true
endpoint = "\${WEIR_DYNAMODB_ENDPOINT}"
region = "us-east-1"
[checkpoint]
dir = "$work/checkpoints"
interval = "5s"
TOML
"$weir" run "$work/pipeline.toml" 2>&1 | grep -E "caught up|windows written"

peers=${WEIR_TOOLS_DIR:-$HOME/.cache/weir/tools}/peers
if ! "$peers/bin/python" -c "import confluent_kafka" 2>/dev/null; then
    echo "bench-kafka-dynamodb: installing confluent-kafka from PyPI into $peers" >&2
    [ -x "$peers/bin/pip" ] || python3 -m venv "$peers"
    "$peers/bin/pip" install --quiet confluent-kafka
fi
records=$(wc -l <"$work/telemetry.jsonl")
"$peers/bin/python" - "$WEIR_KAFKA_BROKERS" "$topic" "$records" <<'PY'
import sys, time
from confluent_kafka import Consumer
brokers, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": brokers, "group.id": f"bare-{time.time_ns()}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
n, first, deadline = 0, None, time.time() + 120
# Counted by the batch (no Python work per message: librdkafka's pace).
while n < total and time.time() < deadline:
    batch = c.consume(num_messages=100_000, timeout=1.0)
    if batch and first is None:
        first = time.time()
    n += sum(1 for m in batch if m.error() is None) if batch and batch[-1].error() else len(batch)
last = time.time()
c.close()
print(f"bare librdkafka consumer (baseline): {n} records in {last - first:.2f}s from the first, {n / (last - first):,.0f}/s")
PY
rm -rf "$work"
