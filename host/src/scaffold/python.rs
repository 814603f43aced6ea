//! `weir new --lang python`: an `app.py` whose plain decorated functions are
//! the stages, a `test_app.py` that runs them with plain Python (no wasm),
//! the SDK beside them (`weir/__init__.py`, the one this binary builds
//! with), a README and, for a pipeline, `weir test` cases.

use super::Kind;

const CONFIGURE: &str = r#"
_config = {"scale": 1.0}


@weir.configure
def setup(config):
    """The stage's manifest `config`: refuse what you do not know."""
    for name, value in config.items():
        if name != "scale":
            raise ValueError(f"unknown field `{name}`, expected `scale`")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("`scale` must be a number")
    _config.update(config)
"#;

const DESERIALIZE: &str = r#"

@weir.deserialize(writes={"key": str, "value": float, "time": datetime})
def parse(record):
    """One JSON line to one event (or a list of them, or None for none).
    Raise to send the record to the dead letters with the message. (The
    host's `[stages.deserialize] builtin = "json"` needs no plugin.)"""
    line = json.loads(record.value)
    return {"key": str(line["key"]), "value": float(line["value"]) * _config["scale"],
            "time": datetime.fromisoformat(line["time"].replace("Z", "+00:00"))}
"#;

const KEY: &str = r#"

@weir.key(reads={"key": str})
def by_key(event):
    """An event's key. (The host's `[stages.key] field = "key"` needs no
    plugin.)"""
    return event["key"].lower()
"#;

const FOLD: &str = r#"

@weir.fold(reads={"value": float}, accumulator=("NAME", 1), init={"count": 0, "sum": 0.0})
def add(acc, events):
    """Folds a run of one window's events (columns: a list per field) into
    its accumulator, a JSON value the host keeps."""
    values = events["value"]
    acc["count"] += len(values)
    acc["sum"] += sum(values)
    return acc
"#;

const FORMAT: &str = r#"

@weir.format(accumulator=("NAME", 1))
def summary(window, acc):
    """A closed window's line: a dict written as a JSON object."""
    return {"key": window.key, "start": weir.rfc3339(window.start_us),
            "count": acc["count"], "mean": acc["sum"] / acc["count"] * _config["scale"]}
"#;

const TEST_HEAD: &str = r#""""The plugin's functions as plain Python: `python3 -m pytest` (or
`python3 test_app.py`) in this folder. No wasm: the decorators return the
functions unchanged."""

import app
import weir
"#;

const TEST_DESERIALIZE: &str = r#"

def test_parses_a_line():
    record = weir.Record(b'{"key": "a", "value": 2, "time": "2024-01-01T00:00:01Z"}', None, 0, None, 1)
    event = app.parse(record)
    assert event["key"] == "a" and event["value"] == 2.0
    assert event["time"].isoformat() == "2024-01-01T00:00:01+00:00"
"#;

const TEST_KEY: &str = r#"

def test_keys_by_the_key_field():
    assert app.by_key({"key": "Sensor-1"}) == "sensor-1"
"#;

const TEST_FOLD: &str = r#"

def test_folds_a_run_of_values():
    acc = app.add(weir.registry.fold[3](), {"value": [1.0, 2.0]})
    assert acc == {"count": 2, "sum": 3.0}
"#;

const TEST_FORMAT: &str = r#"

def test_formats_the_mean():
    app.setup({"scale": 2.0})
    window = weir.Window("a", 0, 1_704_067_200_000_000, 1_704_070_800_000_000, 2)
    out = app.summary(window, {"count": 2, "sum": 3.0})
    assert out == {"key": "a", "start": "2024-01-01T00:00:00Z", "count": 2, "mean": 3.0}
    app.setup({"scale": 1.0})
"#;

const TEST_TAIL: &str = r#"

def test_refuses_a_typo_in_the_config():
    try:
        app.setup({"scael": 2.0})
    except ValueError as err:
        assert "unknown field `scael`" in str(err)
    else:
        raise AssertionError("a typo was accepted")


if __name__ == "__main__":
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_")]
    for test in tests:
        test()
    print(f"{len(tests)} passed")
"#;

/// The files of the project `name` for `kind`.
pub fn files(kind: Kind, name: &str) -> Vec<(&'static str, String)> {
    let stages: &[(&str, &str)] = match kind {
        Kind::Pipeline => &[(FOLD, TEST_FOLD), (FORMAT, TEST_FORMAT)],
        Kind::Deserialize => &[(DESERIALIZE, TEST_DESERIALIZE)],
        Kind::Key => &[(KEY, TEST_KEY)],
        Kind::Fold => &[(FOLD, TEST_FOLD)],
        Kind::Format => &[(FORMAT, TEST_FORMAT)],
    };
    let what = match kind {
        Kind::Pipeline => "a fold and a format; the host decodes, keys and times the events (see cases.toml)".to_owned(),
        other => format!("the {} stage", format!("{other:?}").to_lowercase()),
    };
    let mut app = format!("\"\"\"{name}: a weir plugin in Python ({what}), made by `weir new`.\n\nConfig: `scale` (default 1.0).\n\"\"\"\n\n");
    if kind == Kind::Deserialize {
        app.push_str("import json\nfrom datetime import datetime\n\n");
    }
    app.push_str("import weir\n");
    app.push_str(CONFIGURE);
    let mut tests = TEST_HEAD.to_owned();
    for (stage, test) in stages {
        app.push_str(&stage.replace("NAME", name));
        tests.push_str(test);
    }
    tests.push_str(TEST_TAIL);
    let mut files = vec![
        ("app.py", app),
        ("test_app.py", tests),
        ("weir/__init__.py", crate::build::python::SDK_INIT.to_owned()),
        ("README.md", readme(kind, name)),
        (".gitignore", "*.wasm\n__pycache__/\n".to_owned()),
    ];
    if kind == Kind::Pipeline {
        files.push(("cases.toml", CASES.to_owned()));
    }
    files
}

const CASES: &str = r#"# weir test app.wasm --cases cases.toml
# The host decodes the JSON lines, keys them by `key` and times them by
# `time`; the plugin folds and formats.
[defaults]
config = { scale = 2.0 }
stages = { deserialize = { builtin = "json" }, key = { field = "key" } }
clock = { kind = "event", wait_for_system_duration = "0s", time_field = "time" }
window = { kind = "tumbling", length = "1h", align_to = "2024-01-01T00:00:00Z" }

[[case]]
name = "a window's mean, scaled"
input = [
    '{"key": "a", "value": 1.0, "time": "2024-01-01T00:00:01Z"}',
    '{"key": "a", "value": 2.0, "time": "2024-01-01T00:10:00Z"}',
]
expect = [{ key = "a", start = "2024-01-01T00:00:00Z", count = 2, mean = 3.0 }]

[[case]]
name = "a value that is not a number is a dead letter naming the field"
input = ['{"key": "a", "value": "warm", "time": "2024-01-01T00:00:01Z"}']
expect = []
expect_dead = [{ line = 1, reason = "field `value`" }]

[[case]]
name = "a typo in the config is refused"
config = { scael = 2.0 }
expect_error = "unknown field `scael`"
"#;

fn readme(kind: Kind, name: &str) -> String {
    let whole = kind == Kind::Pipeline;
    let test = if whole { "weir test app.wasm --cases cases.toml      # in the real host\n" } else { "" };
    let stages = if whole {
        "[stages]\nplugin = \"app.wasm\"\nconfig = { scale = 1.0 }\n\n[stages.deserialize]\nbuiltin = \"json\"\n\n[stages.key]\nfield = \"key\"\n\n[clock]\nkind = \"event\"\ntime_field = \"time\"".to_owned()
    } else {
        let kind = format!("{kind:?}").to_lowercase();
        format!("[stages.{kind}]   # the host checks the fields it reads are written upstream\nplugin = \"app.wasm\"\nconfig = {{ scale = 1.0 }}")
    };
    format!(
        r#"# {name}

A weir plugin in Python, made by `weir new --lang python`.

```sh
python3 -m pytest                          # the functions, as plain Python
weir build app.py                          # the component, app.wasm
{test}```

`weir build` installs componentize-py from PyPI once (under
~/.cache/weir/tools). `weir/` is weir's Python SDK, written out by this
`weir` version so the tests run without installing anything.

Use it in a manifest:

```toml
{stages}
```

See the plugin author's guide (`docs/plugin-guide.md` in weir) for the
decorators, the accumulator and its versions, config, errors and limits.
"#
    )
}
