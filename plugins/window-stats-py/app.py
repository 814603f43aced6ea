"""window-stats in Python: count, mean, min and max of one numeric field per
key and window — the same job, and the same accumulator (`window-stats` v1),
as the Rust plugin, so either language's fold pairs with either's format.

The host decodes the JSON, keys and times the events (see the manifests in
`examples/seed-002-min-max-mean/`). Config: `value_field` (default "temp").
"""

import weir

_config = {"value_field": "temp"}


@weir.configure
def setup(config):
    for name, value in config.items():
        if name not in _config:
            raise ValueError(f"unknown field `{name}`, expected `value_field`")
        if not isinstance(value, str) or not value:
            raise ValueError(f"`{name}` must name a field")
    _config.update(config)


def _reads():
    return {_config["value_field"]: float}


@weir.fold(reads=_reads, accumulator=("window-stats", 1), init=lambda: {"count": 0, "sum": 0.0, "min": 0.0, "max": 0.0})
def stats(acc, events):
    values = events[_config["value_field"]]
    low, high = min(values), max(values)
    if acc["count"] == 0:
        acc["min"], acc["max"] = low, high
    else:
        acc["min"], acc["max"] = min(acc["min"], low), max(acc["max"], high)
    acc["count"] += len(values)
    acc["sum"] += sum(values)
    return acc


@weir.format(accumulator=("window-stats", 1))
def summary(window, acc):
    if acc["count"] == 0:
        raise ValueError("empty window")
    return {
        "key": window.key,
        "start": weir.rfc3339(window.start_us),
        "end": weir.rfc3339(window.end_us),
        "count": acc["count"],
        "mean": acc["sum"] / acc["count"],
        "min": float(acc["min"]),
        "max": float(acc["max"]),
    }
