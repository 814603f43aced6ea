#!/usr/bin/env bash
# Records per second from Kafka to DynamoDB Local: the seed 001 telemetry,
# repeated REPEAT times (each copy 30 minutes later), produced into a
# 3-partition topic, then read by weir (window-stats plugin, 1 h windows)
# with its results written to DynamoDB Local. Prints weir's own figure.
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
rm -rf "$work"
