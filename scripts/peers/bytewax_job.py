"""The benchmark job in Bytewax 0.21 as its users write it: JSON lines in,
key by device, event clock, 60 s tumbling windows aligned to 2020-01-01,
count/sum/min/max/mean of `temp`, one JSON line per window out.

    python -m bytewax.run bytewax_job:flow   (IN and OUT from the environment)
"""

import json
import os
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.connectors.files import FileSink, FileSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower

ALIGN = datetime(2020, 1, 1, tzinfo=timezone.utc)


def parse(line):
    row = json.loads(line)
    return row["device"], row


def event_time(row):
    return datetime.fromtimestamp(row["ts"], timezone.utc)


def new_acc():
    return [0, 0.0, float("inf"), float("-inf")]


def fold(acc, row):
    t = row["temp"]
    acc[0] += 1
    acc[1] += t
    if t < acc[2]:
        acc[2] = t
    if t > acc[3]:
        acc[3] = t
    return acc


def merge(a, b):
    return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])]


def shape(item):
    key, (window_id, acc) = item
    start = ALIGN + timedelta(seconds=60 * window_id)
    return key, json.dumps({"key": key, "start": start.isoformat(), "count": acc[0], "mean": acc[1] / acc[0], "min": acc[2], "max": acc[3]})


flow = Dataflow("bench")
lines = op.input("in", flow, FileSource(os.environ["IN"]))
keyed = op.map("parse", lines, parse)
clock = EventClock(event_time, wait_for_system_duration=timedelta(seconds=0))
windower = TumblingWindower(length=timedelta(seconds=60), align_to=ALIGN)
stats = win.fold_window("stats", keyed, clock, windower, new_acc, fold, merge)
op.output("out", op.map("shape", stats.down, shape), FileSink(os.environ["OUT"]))
