"""The plugin's functions as plain Python: `pytest plugins/window-stats-py`
(with `sdk/python` on PYTHONPATH), or `python3 test_app.py`. No wasm, no
WIT types: the decorators return the functions unchanged."""

import app
import weir


def new():
    return weir.registry.fold[3]()


def test_folds_a_run_of_values():
    acc = app.stats(new(), {"temp": [3.0, 1.0, 2.0]})
    assert acc == {"count": 3, "sum": 6.0, "min": 1.0, "max": 3.0}


def test_a_later_run_adds_to_the_window():
    acc = app.stats(app.stats(new(), {"temp": [-4.0]}), {"temp": [10.0]})
    assert acc == {"count": 2, "sum": 6.0, "min": -4.0, "max": 10.0}


def test_formats_like_the_rust_plugin():
    window = weir.Window("s", 0, 1_594_512_000_000_000, 1_594_515_600_000_000, 3)
    out = app.summary(window, {"count": 3, "sum": 6.0, "min": 1.0, "max": 3.0})
    assert out == {"key": "s", "start": "2020-07-12T00:00:00Z", "end": "2020-07-12T01:00:00Z",
                   "count": 3, "mean": 2.0, "min": 1.0, "max": 3.0}


def test_the_config_names_the_field_and_refuses_typos():
    app.setup({"value_field": "value"})
    assert app._reads() == {"value": float}
    try:
        app.setup({"colum": "x"})
    except ValueError as err:
        assert "unknown field `colum`" in str(err)
    else:
        raise AssertionError("a typo was accepted")
    app.setup({"value_field": "temp"})


if __name__ == "__main__":
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_")]
    for test in tests:
        test()
    print(f"{len(tests)} cases passed, 0 failed")
