"""window-stats in Python: count, mean, min and max of one numeric field per
key and window — the same job as the Rust plugin `window-stats`, against the
same WIT (world `pipeline`), built with componentize-py.

Config (every stage may get the same table): `key_field` (default
"device"), `value_field` ("temp"), `time_field` ("ts": Unix seconds, or an
ISO 8601 / RFC 3339 time; a time without an offset is UTC).

Events and accumulators are JSON between the stages; they never leave this
component, so this plugin serves all four stages itself.
"""

import json
import math
from datetime import datetime, timezone

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Failure, Packed
from wit_world.exports.deserialize import Events
from wit_world.exports.key import Keys
from wit_world.exports.fold import Folded
from wit_world.exports.format import Formatted

FIELDS = {"key_field": "device", "value_field": "temp", "time_field": "ts"}
STATE_VERSION = 1
_config = dict(FIELDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _configure(stage, text):
    """Reads the stage's JSON config; an unknown field is refused."""
    try:
        given = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise Err(f"{stage} config: not JSON: {err}")
    if not isinstance(given, dict):
        raise Err(f"{stage} config: expected a table")
    for name, value in given.items():
        if name not in FIELDS:
            raise Err(f"{stage} config: unknown field `{name}`, expected one of {', '.join(f'`{f}`' for f in FIELDS)}")
        if not isinstance(value, str) or not value:
            raise Err(f"{stage} config: `{name}` must name a field")
    _config.update(given)


def _items(packed):
    """The byte strings of a packed buffer, in order."""
    data, start = packed.data, 0
    for end in packed.ends:
        yield data[start:end]
        start = end


def _pack(items):
    data, ends = bytearray(), []
    for item in items:
        data += item
        ends.append(len(data))
    return Packed(bytes(data), ends)


def _number(value, name):
    try:
        if isinstance(value, bool):
            raise ValueError
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"field `{name}` is not a number: {json.dumps(value)}")
    if not math.isfinite(x):
        raise ValueError(f"field `{name}` is not a number: {json.dumps(value)}")
    return x


def _micros(value, name):
    """Event time in microseconds: Unix seconds or an ISO 8601 time."""
    try:
        return round(_number(value, name) * 1_000_000)
    except ValueError:
        pass
    if not isinstance(value, str):
        raise ValueError(f"field `{name}` is neither Unix seconds nor an RFC 3339 time: {json.dumps(value)}")
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"field `{name}`: `{value}` is not an RFC 3339 time (expected like 2022-01-01T00:00:04Z)")
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _rfc3339(micros):
    seconds, fraction = divmod(micros, 1_000_000)
    t = datetime.fromtimestamp(seconds, timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


class Deserialize(exports.Deserialize):
    def configure(self, config):
        _configure("deserialize", config)

    def deserialize(self, batch):
        payloads, times, origins, failures = [], [], [], []
        key_field, value_field, time_field = _config["key_field"], _config["value_field"], _config["time_field"]
        for index, raw in enumerate(_items(batch.values)):
            try:
                try:
                    row = json.loads(raw)
                except ValueError as err:
                    raise ValueError(f"not JSON: {err}")
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                for name in (key_field, value_field, time_field):
                    if name not in row:
                        raise ValueError(f"missing field `{name}`")
                key = row[key_field]
                key = key if isinstance(key, str) else json.dumps(key)
                value = _number(row[value_field], value_field)
                at = _micros(row[time_field], time_field)
            except ValueError as err:
                failures.append(Failure(index, str(err)))
                continue
            payloads.append(json.dumps([key, value]).encode())
            times.append(at)
            origins.append(index)
        return Events(_pack(payloads), times, origins, failures)


class Key(exports.Key):
    def configure(self, config):
        _configure("key", config)

    def key(self, events):
        return Keys(_pack(json.loads(e)[0].encode() for e in _items(events)), [])


class Fold(exports.Fold):
    def configure(self, config):
        _configure("fold", config)

    def state_version(self):
        return STATE_VERSION

    def fold(self, batch):
        events = list(_items(batch.events))
        accs, failures, start = [], [], 0
        for group in batch.groups:
            if group.acc is None:
                count, total, low, high = 0, 0.0, math.inf, -math.inf
            else:
                count, total, low, high = json.loads(group.acc)
            for index in range(start, group.end):
                value = json.loads(events[index])[1]
                count += 1
                total += value
                low = min(low, value)
                high = max(high, value)
            start = group.end
            accs.append(json.dumps([count, total, low, high]).encode())
        return Folded(_pack(accs), failures)

    def migrate(self, from_version, accs):
        raise Err(f"cannot read accumulators of state version {from_version}: this plugin writes version {STATE_VERSION}")


class Format(exports.Format):
    def configure(self, config):
        _configure("format", config)

    def format(self, windows):
        objects, failures = [], []
        for index, window in enumerate(windows):
            count, total, low, high = json.loads(window.acc)
            if count == 0:
                objects.append("")
                failures.append(Failure(index, "empty window"))
                continue
            objects.append(json.dumps({
                "key": window.key,
                "start": _rfc3339(window.start),
                "end": _rfc3339(window.end),
                "count": count,
                "mean": total / count,
                "min": float(low),
                "max": float(high),
            }, separators=(",", ":")))
        return Formatted(objects, failures)
