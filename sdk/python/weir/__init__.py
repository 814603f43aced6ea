"""Write weir pipeline stages in Python: plain decorated functions.

A plugin is a Python file whose functions carry one of the decorators
below; ``weir build app.py`` turns it into a WebAssembly component
(contract ``weir:stream@0.2.0``). The functions never see WIT types, so
they are tested with plain ``pytest``::

    from weir import fold, format

    @fold(reads={"temp": float}, accumulator=("window-stats", 1),
          init=lambda: {"count": 0, "sum": 0.0, "min": None, "max": None})
    def stats(acc, events):
        temps = events["temp"]          # the window's values, a plain list
        acc["count"] += len(temps)
        acc["sum"] += sum(temps)
        acc["min"] = min(temps) if acc["min"] is None else min(acc["min"], *temps)
        acc["max"] = max(temps) if acc["max"] is None else max(acc["max"], *temps)
        return acc

    @format(accumulator=("window-stats", 1))
    def summary(window, acc):
        return {"key": window.key, "mean": acc["sum"] / acc["count"]}

The host decodes JSON, keys and times events by field (the manifest's
``[stages.deserialize] builtin = "json"``, ``[stages.key] field``,
``[clock] time_field``), so most plugins are a fold and a format. Events
reach a fold as columns: a dict from field name to a list with one value
per event (``None`` where an event lacks an optional field), so ``sum()``,
``min()`` and ``max()`` run over whole windows at C speed.

Accumulators are kept by the host as JSON (``json.dumps`` of what the fold
returns), so they must be JSON values; a fold in another language with the
same accumulator identity reads them.
"""

import copy
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

__all__ = [
    "Window", "Record", "StageError", "configure", "deserialize", "key", "fold", "format",
    "migrate", "rfc3339", "micros_to_datetime", "registry",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Type names a schema may use, and the Python types that mean them.
TYPES = {
    int: "int", float: "float", bool: "bool", str: "text", datetime: "time",
    dict: "json", list: "json",
    "int": "int", "float": "float", "bool": "bool", "text": "text", "str": "text",
    "time": "time", "json": "json",
}


class StageError(Exception):
    """Raise it (or any exception) to fail an event or window: it goes to the
    dead-letter output with the message."""


class Window(NamedTuple):
    """A closed window, as a format function sees it (immutable; a named
    tuple, which is cheap to make once per window)."""

    #: The key its events share.
    key: str
    #: Tumbling windows: window lengths since ``align_to``; collect windows:
    #: a sequence number per key.
    id: int
    #: First instant inside the window, microseconds since the epoch.
    start_us: int
    #: First instant after the window, microseconds since the epoch.
    end_us: int
    #: How many events were folded into it.
    count: int

    @property
    def start(self):
        """The start as an aware UTC ``datetime``."""
        return micros_to_datetime(self.start_us)

    @property
    def end(self):
        """The end as an aware UTC ``datetime``."""
        return micros_to_datetime(self.end_us)


class Record(NamedTuple):
    """A raw record, as a deserialize function sees it (a named tuple)."""

    #: The value bytes (a Kafka message value, a file line).
    value: bytes
    #: The Kafka key, or ``None``.
    key: object
    #: The source's time for it, microseconds since the epoch.
    timestamp_us: int
    #: The Kafka partition, or ``None`` for files.
    partition: object
    #: The Kafka offset, or the line number in a file.
    offset: int


def micros_to_datetime(micros):
    """Microseconds since the epoch as an aware UTC ``datetime``."""
    return _EPOCH + timedelta(microseconds=micros)


def rfc3339(micros):
    """Microseconds since the epoch as RFC 3339 text in UTC with a ``Z``,
    the fraction only when not zero (as the Rust SDK writes it). Window
    bounds repeat across keys, so recent answers are remembered."""
    text = _RFC3339.get(micros)
    if text is None:
        seconds, fraction = divmod(micros, 1_000_000)
        text = micros_to_datetime(seconds * 1_000_000).strftime("%Y-%m-%dT%H:%M:%S")
        if fraction:
            text += "." + f"{fraction:06d}".rstrip("0")
        text += "Z"
        if len(_RFC3339) >= 4096:
            _RFC3339.clear()
        _RFC3339[micros] = text
    return text


_RFC3339 = {}


class _Registry:
    """What the decorators registered; the component glue reads it."""

    def __init__(self):
        self.configure = None
        self.deserialize = None
        self.key = None
        self.fold = None
        self.format = None
        self.migrate = None


#: The stages this module registered (read by the component glue).
registry = _Registry()


def _schema(fields, what):
    """``{"temp": float, "hum": "float?"}`` as ``[(name, type, optional)]``;
    a function returning such a dict is called when the schema is asked
    for (after the config), so the fields may depend on the config."""
    if callable(fields):
        return lambda: _schema(fields(), what)
    out = []
    for name, ty in dict(fields).items():
        optional = isinstance(ty, str) and ty.endswith("?")
        base = ty[:-1] if optional else ty
        if base not in TYPES:
            raise TypeError(f"{what}: field `{name}` has type {ty!r}; use int, float, bool, str, datetime, dict or a name like \"float?\"")
        out.append((name, TYPES[base], optional))
    return out


def _identity(accumulator, what):
    name, version = accumulator
    if not isinstance(name, str) or not name or not isinstance(version, int) or version < 0:
        raise TypeError(f"{what}: accumulator must be (name, version), like (\"window-stats\", 1)")
    return (name, version)


def _only_once(slot, what):
    if getattr(registry, slot) is not None:
        raise TypeError(f"a plugin has one {what} function; this is the second")


def configure(function):
    """Registers ``function(config: dict)``, called once per stage with the
    stage's manifest config before any record. Raise to refuse the config
    (the pipeline does not start, and the message says why)."""
    _only_once("configure", "configure")
    registry.configure = function
    return function


def deserialize(writes):
    """Registers ``function(record: Record) -> dict | list[dict] | None``:
    the events a raw record yields, each a dict of the fields in
    ``writes`` (``{"temp": float, "at": datetime}``). Prefer the host's
    built-in JSON decoder when records are JSON objects."""
    schema = _schema(writes, "deserialize")

    def register(function):
        _only_once("deserialize", "deserialize")
        registry.deserialize = (function, schema)
        return function
    return register


def key(reads):
    """Registers ``function(event: dict) -> str``: an event's key, from the
    fields in ``reads``. Prefer ``[stages.key] field = "..."`` in the
    manifest, which needs no plugin call."""
    schema = _schema(reads, "key")

    def register(function):
        _only_once("key", "key")
        registry.key = (function, schema)
        return function
    return register


def fold(reads, accumulator, init):
    """Registers ``function(acc, events: dict[str, list]) -> acc``: folds a
    window's run of events (columns of the fields in ``reads``, a dict or a
    function of no arguments returning one, called after ``@configure``)
    into its accumulator and returns it. Time fields arrive as microseconds
    since the epoch. ``init`` is the accumulator of a new window
    (a value, copied, or a function making one). ``accumulator`` names it:
    ``(name, version)``; the format function must name the same one.

    If the function raises for a run, each event of the run is retried
    alone: only the events that fail alone are dead-lettered."""
    schema = _schema(reads, "fold")
    identity = _identity(accumulator, "fold")
    make = init if callable(init) else (lambda: copy.deepcopy(init))

    def register(function):
        _only_once("fold", "fold")
        registry.fold = (function, schema, identity, make)
        return function
    return register


def migrate(function):
    """Registers ``function(from_name: str, from_version: int, acc) -> acc``:
    rewrites an accumulator another fold wrote, so open windows survive a
    swap to this plugin. Raise to refuse (the swap is refused)."""
    _only_once("migrate", "migrate")
    registry.migrate = function
    return function


def format(accumulator):
    """Registers ``function(window: Window, acc) -> dict``: the JSON object
    written for a closed window."""
    identity = _identity(accumulator, "format")

    def register(function):
        _only_once("format", "format")
        registry.format = (function, identity)
        return function
    return register
