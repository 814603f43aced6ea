"""Writes the expected outputs of weir's sliding and session window
examples by running the same jobs in Bytewax 0.21.1 itself, so the golden
files are Bytewax's answers, not weir's. Run by scripts/golden-bytewax.sh
(which installs Bytewax from PyPI); tests/tests/golden.rs only compares.

Each job: JSON lines of seed 002, keyed by `sensor`, event time from `ts`,
fold_window with count/sum/min/max of `value`, shaped like weir's
window-stats output (key, start, end, count, mean, min, max).
"""

import json
import pathlib
import random
import sys
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, SessionWindower, SlidingWindower
from bytewax.testing import TestingSink, TestingSource, run_main

here = pathlib.Path(__file__).parent
seed_002 = here.parent / "seed-002-min-max-mean" / "input.jsonl"
UTC = timezone.utc


def rfc3339(t):
    """As weir's Timestamp prints: trailing zeros of the fraction dropped."""
    text = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += ("." + f"{t.microsecond:06d}").rstrip("0")
    return text + "Z"


def event_time(row):
    return datetime.fromisoformat(row["ts"]).replace(tzinfo=UTC)


def new_acc():
    return [0, 0.0, None, None]


def fold(acc, row):
    v = float(row["value"])
    acc[0] += 1
    acc[1] += v
    acc[2] = v if acc[2] is None else min(acc[2], v)
    acc[3] = v if acc[3] is None else max(acc[3], v)
    return acc


def merge(a, b):
    if a[0] == 0:
        return b
    if b[0] == 0:
        return a
    return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])]


def run(lines, windower, wait):
    flow = Dataflow("golden")
    rows = op.map("parse", op.input("in", flow, TestingSource(lines)), json.loads)
    keyed = op.key_on("key", rows, lambda row: row["sensor"])
    clock = EventClock(event_time, wait_for_system_duration=wait)
    out = win.fold_window("stats", keyed, clock, windower, new_acc, fold, merge)
    accs, metas, late = [], [], []
    op.output("down", out.down, TestingSink(accs))
    op.output("meta", out.meta, TestingSink(metas))
    op.output("late", out.late, TestingSink(late))
    run_main(flow)
    meta = {(key, wid): m for key, (wid, m) in metas}
    objects = []
    for key, (wid, acc) in accs:
        m = meta[(key, wid)]
        objects.append(json.dumps(
            {"key": key, "start": rfc3339(m.open_time), "end": rfc3339(m.close_time),
             "count": acc[0], "mean": acc[1] / acc[0], "min": acc[2], "max": acc[3]},
            separators=(",", ":")))
    return sorted(objects), len(late)


def shuffled(lines):
    """Seed 002 with each run of 8 lines shuffled (seeded): readings arrive
    out of order, so session windows open apart and merge later."""
    rng = random.Random(7)
    out = []
    for i in range(0, len(lines), 8):
        block = lines[i:i + 8]
        rng.shuffle(block)
        out.extend(block)
    return out


def main():
    lines = [line for line in seed_002.read_text().splitlines() if line.strip()]
    (here / "shuffled-input.jsonl").write_text("\n".join(shuffled(lines)) + "\n")
    jobs = {
        "sliding": (lines, SlidingWindower(length=timedelta(seconds=10), offset=timedelta(seconds=5), align_to=datetime(1970, 1, 1, tzinfo=UTC)), timedelta(seconds=1)),
        "session": (lines, SessionWindower(gap=timedelta(seconds=5)), timedelta(seconds=1)),
        "session-shuffled": (shuffled(lines), SessionWindower(gap=timedelta(seconds=5)), timedelta(seconds=30)),
    }
    for name, (input_lines, windower, wait) in jobs.items():
        objects, late = run(input_lines, windower, wait)
        (here / f"{name}-expected.jsonl").write_text("\n".join(objects) + "\n")
        print(f"{name}: {len(objects)} windows, {late} late (Bytewax 0.21.1)", file=sys.stderr)


if __name__ == "__main__":
    main()
