#!/usr/bin/env bash
# Records per second from Kafka to DynamoDB Local: the seed 001 telemetry,
# repeated REPEAT times (each copy 30 minutes later), produced into a
# 3-partition topic, then read by weir (window-stats plugin, 1 h windows)
# with its results written to DynamoDB Local. Prints weir's own figure and,
# as the baseline in the same run, a bare librdkafka consumer's rate on the
# same topic (confluent-kafka from PyPI, in the cached peers virtualenv:
# poll and count, nothing else), the ratio of the two, and the window
# close → item latency (p50, p99, max) weir's DynamoDB writer measured for
# every item it wrote. weir runs twice, with --workers 1 and --workers 2
# (each worker owning some of the partitions), each in its own group and
# table.
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

# DynamoDB Local is a JVM: its first requests are slow while it warms up,
# which the cloud service does not have. Warm it with 2,000 items written
# into a table of their own before anything is timed.
"$weir" --log warn produce --dynamodb-table "warm-$$" --create-table --sensors 10 --count 2000 --region us-east-1

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
for workers in 1 2; do
cat > "$work/pipeline-$workers.toml" <<TOML
[source]
kind = "kafka"
brokers = "\${WEIR_KAFKA_BROKERS}"
topics = ["$topic"]
group_id = "bench-$$-$workers"
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
table = "bench-$$-$workers"
partition_key = "key"
create_table = true
endpoint = "\${WEIR_DYNAMODB_ENDPOINT}"
region = "us-east-1"
[checkpoint]
dir = "$work/checkpoints-$workers"
interval = "5s"
TOML
"$weir" run --workers "$workers" "$work/pipeline-$workers.toml" >"$work/weir-$workers.log" 2>&1 || { cat "$work/weir-$workers.log" >&2; exit 1; }
echo "weir --workers $workers:"
grep -E "caught up|windows written|window close" "$work/weir-$workers.log"
done

peers=${WEIR_TOOLS_DIR:-$HOME/.cache/weir/tools}/peers
if ! "$peers/bin/python" -c "import confluent_kafka" 2>/dev/null; then
    echo "bench-kafka-dynamodb: installing confluent-kafka from PyPI into $peers" >&2
    [ -x "$peers/bin/pip" ] || python3 -m venv "$peers"
    "$peers/bin/pip" install --quiet confluent-kafka
fi
records=$(wc -l <"$work/telemetry.jsonl")
"$peers/bin/python" - "$WEIR_KAFKA_BROKERS" "$topic" "$records" "$work/weir-1.log" "$work/weir-2.log" <<'PY'
import re
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
bare = n / (last - first)
print(f"bare librdkafka consumer (baseline): {n} records in {last - first:.2f}s from the first, {bare:,.0f}/s")
for workers, path in ((1, sys.argv[4]), (2, sys.argv[5])):
    log = open(path).read()
    weir = float(re.search(r"caught up: .*\(([0-9.]+) records/s\)", log).group(1))
    latency = re.search(r"window close → item written: (.*)", log)
    print(f"weir --workers {workers} / bare consumer: {weir:,.0f} / {bare:,.0f} = {100 * weir / bare:.1f}%")
    print(f"  window close → item in DynamoDB: {latency.group(1) if latency else 'not reported'}")
PY
rm -rf "$work"
