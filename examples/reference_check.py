#!/usr/bin/env python3
"""Recomputes the expected outputs of seeds 000, 001 and 002 in plain Python,
straight from the inputs, so the golden files are not just weir's own output
written down. Run by scripts/test.sh; exits non-zero on any mismatch."""
import collections
import csv
import datetime
import json
import pathlib
import sys

here = pathlib.Path(__file__).parent
UTC = datetime.timezone.utc


def lines(path):
    return [json.loads(line) for line in (here / path).read_text().splitlines() if line.strip()]


def check(name, ok, detail=""):
    if not ok:
        sys.exit(f"reference check failed: {name} {detail}")


# Seed 000: 5 s windows from 2024-01-01, average via Decimal(str(float)).
start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
groups = collections.defaultdict(list)
for row in lines("seed-000-sensor-average/input.jsonl"):
    t = datetime.datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
    groups[(row["id"], (t - start) // datetime.timedelta(seconds=5))].append((row["value"], t))
want = set()
for (key, _), items in groups.items():
    values = [v for v, _ in items]
    times = [t for _, t in items]
    want.add(json.dumps({
        "id": key,
        "average": float(str(sum(values) / len(values))),
        "num_events": len(values),
        "from": (min(times) - start).total_seconds(),
        "to": (max(times) - start).total_seconds(),
    }, sort_keys=True))
got = {json.dumps(row, sort_keys=True) for row in lines("seed-000-sensor-average/expected.jsonl")}
check("seed 000", want == got, f"missing {want - got}, unexpected {got - want}")

# Seed 001: per device, 1 h windows from 2020-01-01, temp stats.
align = datetime.datetime(2020, 1, 1, tzinfo=UTC)
groups = collections.defaultdict(list)
with open(here / "seed-001-telemetry/iot_telemetry_data_1000.csv") as f:
    for row in csv.DictReader(f):
        t = datetime.datetime.fromtimestamp(float(row["ts"]), UTC)
        groups[(row["device"], (t - align) // datetime.timedelta(hours=1))].append(float(row["temp"]))
expected = lines("seed-001-telemetry/expected.jsonl")
check("seed 001 window count", len(expected) == len(groups))
for row in expected:
    start_t = datetime.datetime.fromisoformat(row["start"].replace("Z", "+00:00"))
    values = groups[(row["key"], (start_t - align) // datetime.timedelta(hours=1))]
    check("seed 001", list(row) == ["key", "start", "end", "count", "mean", "min", "max"], row)
    check("seed 001", row["count"] == len(values) and row["min"] == min(values) and row["max"] == max(values), row)
    check("seed 001", abs(row["mean"] - sum(values) / len(values)) < 1e-9, row)

# Seed 002: 10 s windows; lines 201 and 251 arrive past the 1 s grace.
late = {201, 251}
groups = collections.defaultdict(list)
for n, row in enumerate(lines("seed-002-min-max-mean/input.jsonl"), start=1):
    if n in late:
        continue
    t = datetime.datetime.fromisoformat(row["ts"]).replace(tzinfo=UTC)
    groups[(row["sensor"], int(t.timestamp() // 10))].append(row["value"])
expected = lines("seed-002-min-max-mean/expected.jsonl")
check("seed 002 window count", len(expected) == len(groups))
for row in expected:
    start_t = datetime.datetime.fromisoformat(row["start"].replace("Z", "+00:00"))
    values = groups[(row["key"], int(start_t.timestamp() // 10))]
    check("seed 002", row["count"] == len(values) and row["min"] == min(values) and row["max"] == max(values), row)
    check("seed 002", abs(row["mean"] - sum(values) / len(values)) < 1e-9, row)

print("reference check: seeds 000, 001 and 002 expected outputs recomputed in Python and matched")

# Seed 001's profile: per device and hour, every column's figures.
import statistics

rows_by = collections.defaultdict(list)
with open(here / "seed-001-telemetry/iot_telemetry_data_1000.csv") as f:
    for row in csv.DictReader(f):
        t = datetime.datetime.fromtimestamp(float(row["ts"]), UTC)
        rows_by[(row["device"], (t - align) // datetime.timedelta(hours=1))].append(row)
profiles = lines("seed-001-telemetry/profile-expected.jsonl")
check("seed 001 profile window count", len(profiles) == len(rows_by))


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


for p in profiles:
    start_t = datetime.datetime.fromisoformat(p["start"].replace("Z", "+00:00"))
    rows = rows_by[(p["key"], (start_t - align) // datetime.timedelta(hours=1))]
    check("seed 001 profile rows", p["rows"] == len(rows), p["key"])
    for name, c in p["columns"].items():
        if c["type"] == "bool":
            trues = sum(1 for r in rows if r[name] == "true")
            check("seed 001 profile bool", (c["count"], c["true"], c["false"]) == (len(rows), trues, len(rows) - trues), (p["key"], name))
            continue
        v = sorted(float(r[name]) for r in rows)
        q = statistics.quantiles(v, n=4, method="inclusive")
        want = {"count": len(v), "distinct": len(set(v)), "mean": statistics.fmean(v), "std": statistics.stdev(v),
                "min": v[0], "p25": q[0], "p50": q[1], "p75": q[2], "max": v[-1]}
        for k, w in want.items():
            check("seed 001 profile", close(c[k], w), (p["key"], name, k, c[k], w))
        width = (v[-1] - v[0]) / 10
        counts = [0] * 10
        for x in v:
            counts[min(int((x - v[0]) / width), 9) if width > 0 else 0] += 1
        check("seed 001 profile histogram", c["histogram"]["counts"] == counts, (p["key"], name))

print("reference check: seed 001's profile recomputed in Python (statistics) and matched")
