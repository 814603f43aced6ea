//! Seed 004: collect whole items per key — Bytewax's `collect` (by size or
//! timeout) and `collect_window` (per tumbling window) — and print them the
//! way the seed's Python does.
//!
//! Items need not be JSON objects (the seed's are bare numbers), so this
//! plugin deserializes them itself: each becomes an event with the whole
//! item as a `json` field `item`, and a `time` field when `time_field` is
//! set.
//!
//! Config:
//! - deserialize: `time_field` (optional): RFC 3339 event time; without it
//!   the record's own timestamp is used.
//! - key: `field` (the item's field to key by) or `constant` (one key for all).
//! - format: `repr` = `"collect"` prints `('KEY', [ITEMS])`,
//!   `"collect_window"` prints `('KEY', (WINDOW_ID, [ITEMS]))`;
//!   `datetime_fields` lists string fields printed as Python datetimes.
//!
//! The output object is `{"key", "items", "repr"}`; a sink with
//! `text_field = "repr"` prints exactly the seed's lines.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_guest_sdk::{
    DeserializeStage, Emitter, Error, Event, FieldType, FoldStage, FormatStage, Identity, KeyStage, Plugin, Record, Row, Schema, Timestamp, Window,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    time_field: Option<String>,
    field: Option<String>,
    constant: Option<String>,
    repr: Option<Repr>,
    #[serde(default)]
    datetime_fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Repr {
    Collect,
    CollectWindow,
}

pub struct CollectList {
    config: Config,
}

/// An item's JSON text, untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item(pub String);

impl Plugin for CollectList {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        if config.field.is_some() && config.constant.is_some() {
            return Err(Error::msg("set `field` or `constant`, not both"));
        }
        Ok(CollectList { config })
    }
}

fn identity() -> Identity {
    Identity::new("collect-list", 1)
}

impl DeserializeStage for CollectList {
    fn writes(&self) -> Schema {
        let schema = Schema::new("item", 1).field("item", FieldType::Json);
        if self.config.time_field.is_some() { schema.field("time", FieldType::Time) } else { schema }
    }

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let value: Value = record.json()?;
        let event = Event::new().set("item", weir_guest_sdk::Value::Json(value.to_string()));
        match &self.config.time_field {
            None => out.emit(event),
            Some(name) => {
                let text = value.get(name).and_then(Value::as_str).ok_or_else(|| Error::msg(format!("missing string field `{name}`")))?;
                let time = Timestamp::parse_rfc3339(text).map_err(|e| e.context(format!("field `{name}`")))?;
                out.emit(event.time("time", time))
            }
        }
    }
}

impl KeyStage for CollectList {
    fn reads(&self) -> Schema {
        Schema::new("item", 1).field("item", FieldType::Json)
    }

    fn key(&self, event: &Row<'_>) -> Result<String, Error> {
        if let Some(constant) = &self.config.constant {
            return Ok(constant.clone());
        }
        let Some(name) = &self.config.field else {
            return Err(Error::msg("key config needs `field` or `constant`"));
        };
        let value: Value = event.json("item")?;
        match value.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(Error::msg(format!("missing field `{name}`"))),
        }
    }
}

impl FoldStage for CollectList {
    type Acc = Vec<Item>;

    fn reads(&self) -> Schema {
        Schema::new("item", 1).field("item", FieldType::Json)
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> Vec<Item> {
        Vec::new()
    }

    fn fold(&self, acc: &mut Vec<Item>, event: &Row<'_>) -> Result<(), Error> {
        acc.push(Item(event.json_text("item")?.to_owned()));
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct Collected {
    pub key: String,
    pub items: Vec<Value>,
    pub repr: String,
}

impl FormatStage for CollectList {
    type Acc = Vec<Item>;
    type Output = Collected;

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn format(&self, window: &Window, acc: Vec<Item>) -> Result<Collected, Error> {
        let items = acc.iter().map(|i| serde_json::from_str(&i.0)).collect::<Result<Vec<Value>, _>>()?;
        let list = format!("[{}]", items.iter().map(|v| self.python(v, None)).collect::<Vec<_>>().join(", "));
        let key = python_str(&window.key);
        let repr = match self.config.repr.unwrap_or(Repr::Collect) {
            Repr::Collect => format!("({key}, {list})"),
            Repr::CollectWindow => format!("({key}, ({}, {list}))", window.id),
        };
        Ok(Collected { key: window.key.clone(), items, repr })
    }
}

impl CollectList {
    // Python's repr of the value json.loads would give, with the configured
    // fields as the datetimes the seed's items hold.
    fn python(&self, value: &Value, field: Option<&str>) -> String {
        match value {
            Value::Null => "None".into(),
            Value::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Value::Number(n) if n.is_f64() => {
                let text = n.to_string();
                if text.contains(['.', 'e', 'E']) { text } else { format!("{text}.0") }
            }
            Value::Number(n) => n.to_string(),
            Value::String(s) => match field.filter(|f| self.config.datetime_fields.iter().any(|d| d == f)) {
                Some(_) => Timestamp::parse_rfc3339(s).map(python_datetime).unwrap_or_else(|_| python_str(s)),
                None => python_str(s),
            },
            Value::Array(items) => format!("[{}]", items.iter().map(|v| self.python(v, None)).collect::<Vec<_>>().join(", ")),
            Value::Object(map) => {
                let fields: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", python_str(k), self.python(v, Some(k)))).collect();
                format!("{{{}}}", fields.join(", "))
            }
        }
    }
}

fn python_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn python_datetime(t: Timestamp) -> String {
    let p = t.parts();
    let mut args = format!("{}, {}, {}, {}, {}", p.year, p.month, p.day, p.hour, p.minute);
    if p.second != 0 || p.micros != 0 {
        args.push_str(&format!(", {}", p.second));
    }
    if p.micros != 0 {
        args.push_str(&format!(", {}", p.micros));
    }
    format!("datetime.datetime({args}, tzinfo=datetime.timezone.utc)")
}

weir_guest_sdk::export_plugin!(deserialize: CollectList, key: CollectList, fold: CollectList, format: CollectList);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_guest_sdk::{Value as Field, testing};

    use super::*;

    #[test]
    fn prints_a_collect_batch_like_python() {
        let p: CollectList = testing::configure(json!({ "repr": "collect" })).unwrap();
        let acc = vec![Item("0".into()), Item("1".into()), Item("2".into())];
        let out = testing::format(&p, &testing::window("ALL", "2022-01-01T00:00:00Z", "2022-01-01T00:00:10Z", 3), acc).unwrap();
        assert_eq!(out["repr"], "('ALL', [0, 1, 2])");
    }

    #[test]
    fn prints_a_window_with_datetimes_like_python() {
        let p: CollectList = testing::configure(json!({ "repr": "collect_window", "datetime_fields": ["time"] })).unwrap();
        let acc =
            vec![Item(r#"{"time":"2022-01-01T00:00:00Z","user":"a","val":1}"#.into()), Item(r#"{"time":"2022-01-01T00:00:04Z","user":"a","val":1}"#.into())];
        let mut window = testing::window("a", "2022-01-01T00:00:00Z", "2022-01-01T00:00:10Z", 2);
        window.id = 0;
        let out = testing::format(&p, &window, acc).unwrap();
        assert_eq!(
            out["repr"],
            "('a', (0, [{'time': datetime.datetime(2022, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), 'user': 'a', 'val': 1}, \
             {'time': datetime.datetime(2022, 1, 1, 0, 0, 4, tzinfo=datetime.timezone.utc), 'user': 'a', 'val': 1}]))"
        );
    }

    #[test]
    fn keys_by_field_or_constant() {
        let by_field: CollectList = testing::configure(json!({ "field": "user" })).unwrap();
        let item = |text: &str| Event::new().set("item", Field::Json(text.into()));
        assert_eq!(testing::key(&by_field, &item(r#"{"user":"b"}"#)).unwrap(), "b");
        let constant: CollectList = testing::configure(json!({ "constant": "ALL" })).unwrap();
        assert_eq!(testing::key(&constant, &item("7")).unwrap(), "ALL");
        let folded = testing::fold(&by_field, &[item(r#"{"user": "b"}"#), item("7")]).unwrap();
        assert_eq!(folded, [Item(r#"{"user": "b"}"#.into()), Item("7".into())]);
        assert!(testing::configure::<CollectList>(json!({ "field": "u", "constant": "c" })).is_err());
    }
}
