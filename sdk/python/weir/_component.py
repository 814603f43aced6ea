"""The component side of the Python SDK: the WIT exports of world
``pipeline`` (contract ``weir:stream@0.2.0``), built on what the
decorators in ``weir`` registered. ``weir build`` imports the plugin
module first, then this one; plugin authors never import it.
"""

import copy
import json
from datetime import datetime

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types as t
from wit_world.exports.deserialize import Decoded
from wit_world.exports.key import Keys
from wit_world.exports.fold import Folded
from wit_world.exports.format import Formatted

import weir

_TYPES = {"int": t.FieldType.INT, "float": t.FieldType.FLOAT, "bool": t.FieldType.BOOL,
          "text": t.FieldType.TEXT, "time": t.FieldType.TIME, "json": t.FieldType.JSON}
_COLUMNS = {"int": t.Column_Ints, "float": t.Column_Floats, "bool": t.Column_Bools,
            "text": t.Column_Texts, "time": t.Column_Times, "json": t.Column_Json}
_PLACEHOLDER = {"int": 0, "float": 0.0, "bool": False, "text": "", "time": 0, "json": ""}
_NOT_SERVED = "this component does not serve the {} stage (no @weir.{} function)"


def _configure(stage, text):
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise Err(f"{stage} config: not JSON: {err}")
    registered = getattr(weir.registry, stage)
    if registered is None:
        raise Err(_NOT_SERVED.format(stage, stage))
    if weir.registry.configure is not None:
        try:
            weir.registry.configure(config)
        except Exception as err:
            raise Err(f"{stage} config: {err}")


def _fields(fields):
    return fields() if callable(fields) else fields


def _schema(name, fields):
    fields = _fields(fields)
    return t.Schema(name, 1, [t.FieldSpec(n, _TYPES[ty], optional) for n, ty, optional in fields])


def _columns(events, names):
    """The fields `names` of `events` as a dict of lists (None where missing)."""
    out = {}
    for field in events.fields:
        if field.name in names:
            values = field.values.value
            if field.missing:
                values = list(values)
                for m in field.missing:
                    values[m] = None
            out[field.name] = values
    return out


def _failure_text(err):
    """The dead letter's reason: the exception's type and message."""
    if isinstance(err, weir.StageError):
        return str(err)
    return f"{type(err).__name__}: {err}"


class Deserialize(exports.Deserialize):
    def configure(self, config):
        _configure("deserialize", config)

    def writes(self):
        return _schema("deserialize", weir.registry.deserialize[1])

    def deserialize(self, batch):
        function, fields = weir.registry.deserialize
        fields = _fields(fields)
        columns = {name: [] for name, _, _ in fields}
        missing = {name: [] for name, _, _ in fields}
        origins, failures, count = [], [], 0
        data, start = batch.values.data, 0
        keys, kstart = batch.keys, 0
        for index, end in enumerate(batch.values.ends):
            value = data[start:end]
            start = end
            kend = keys.ends[index] if index < len(keys.ends) else kstart
            key = keys.data[kstart:kend] or None
            kstart = kend
            partition = batch.partitions[index] if index < len(batch.partitions) else -1
            record = weir.Record(value, key, batch.timestamps[index], None if partition < 0 else partition, batch.offsets[index])
            try:
                made = function(record)
                made = [] if made is None else [made] if isinstance(made, dict) else list(made)
                rows = [_row(event, fields) for event in made]
            except Exception as err:
                failures.append(t.Failure(index, _failure_text(err)))
                continue
            for row in rows:
                for name, ty, _ in fields:
                    v = row[name]
                    if v is None:
                        missing[name].append(count)
                        v = _PLACEHOLDER[ty]
                    columns[name].append(v)
                count += 1
                origins.append(index)
        events = t.Events(count, [t.Field(name, _COLUMNS[ty](columns[name]), missing[name]) for name, ty, _ in fields])
        return Decoded(events, origins, failures)


def _row(event, fields):
    """An event dict checked and converted to column values."""
    row = {}
    for name in event:
        if not any(name == n for n, _, _ in fields):
            raise ValueError(f"field `{name}` is not among the fields @deserialize declared it writes")
    for name, ty, optional in fields:
        v = event.get(name)
        if v is None:
            if not optional:
                raise ValueError(f"missing field `{name}`")
            row[name] = None
            continue
        if ty == "time":
            if isinstance(v, datetime):
                delta = v - weir._EPOCH
                v = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            elif not isinstance(v, int):
                raise ValueError(f"field `{name}`: a time is a datetime or microseconds, not {v!r}")
        elif ty == "json":
            v = json.dumps(v)
        elif ty == "float":
            v = float(v)
        elif ty == "int" and not isinstance(v, int):
            raise ValueError(f"field `{name}` is declared int, not {v!r}")
        elif ty == "text" and not isinstance(v, str):
            raise ValueError(f"field `{name}` is declared text, not {v!r}")
        row[name] = v
    return row


class Key(exports.Key):
    def configure(self, config):
        _configure("key", config)

    def reads(self):
        return _schema("key", weir.registry.key[1])

    def key(self, events):
        function, fields = weir.registry.key
        columns = _columns(events, {n for n, _, _ in _fields(fields)})
        keys, failures = [], []
        for i in range(events.count):
            try:
                k = function({name: values[i] for name, values in columns.items()})
                if not isinstance(k, str):
                    raise TypeError(f"a key is text, not {k!r}")
                keys.append(k)
            except Exception as err:
                keys.append("")
                failures.append(t.Failure(i, _failure_text(err)))
        return Keys(keys, failures)


class Fold(exports.Fold):
    def configure(self, config):
        _configure("fold", config)

    def reads(self):
        return _schema("fold", weir.registry.fold[1])

    def accumulator(self):
        name, version = weir.registry.fold[2]
        return t.Identity(name, version)

    def fold(self, batch):
        function, fields, _, init = weir.registry.fold
        columns = _columns(batch.events, {n for n, _, _ in _fields(fields)})
        accs, failures, start = [], [], 0
        for group in batch.groups:
            end = group.end
            acc = init() if group.acc is None else json.loads(group.acc)
            run = {name: values[start:end] for name, values in columns.items()}
            try:
                acc = function(acc, run)
            except Exception:
                # Find the events that fail alone; the rest are folded.
                for i in range(start, end):
                    attempt = copy.deepcopy(acc)
                    try:
                        acc = function(attempt, {name: values[i:i + 1] for name, values in columns.items()})
                    except Exception as err:
                        failures.append(t.Failure(i, _failure_text(err)))
            try:
                accs.append(json.dumps(acc, separators=(",", ":"), allow_nan=False).encode())
            except (TypeError, ValueError) as err:
                failures.extend(t.Failure(i, f"the accumulator is not JSON: {err}") for i in range(start, end))
                accs.append(group.acc or b"null")
            start = end
        return Folded(accs, failures)

    def migrate(self, from_, accs):
        if weir.registry.migrate is None:
            name, version = weir.registry.fold[2]
            raise Err(f"cannot read accumulators `{from_.name} v{from_.version}`: this plugin writes `{name} v{version}` and has no @weir.migrate function")
        out = []
        for index, old in enumerate(accs):
            try:
                out.append(json.dumps(weir.registry.migrate(from_.name, from_.version, json.loads(old)), separators=(",", ":")).encode())
            except Exception as err:
                raise Err(f"accumulator {index}: {_failure_text(err)}")
        return out


class Format(exports.Format):
    def configure(self, config):
        _configure("format", config)

    def accumulator(self):
        name, version = weir.registry.format[1]
        return t.Identity(name, version)

    def format(self, windows):
        function = weir.registry.format[0]
        objects, failures = [], []
        for index, w in enumerate(windows):
            try:
                out = function(weir.Window(w.key, w.id, w.start, w.end, w.count), json.loads(w.acc))
                if not isinstance(out, dict):
                    raise TypeError(f"format must return a dict (a JSON object), not {type(out).__name__}")
                objects.append(json.dumps(out, separators=(",", ":"), allow_nan=False))
            except Exception as err:
                objects.append("")
                failures.append(t.Failure(index, _failure_text(err)))
        return Formatted(objects, failures)
