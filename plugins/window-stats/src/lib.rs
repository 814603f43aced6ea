//! Count, mean, min and max of one numeric field per key and window — seed
//! 001's per-device telemetry windows and seed 002's downsampling.
//!
//! Config (every stage may get the same table; each reads what it needs):
//! - `key_field` (default `"device"`): the field events are keyed by.
//! - `value_field` (default `"temp"`): the numeric field summarised. A JSON
//!   number or a numeric string (CSV rows carry strings) both work.
//! - `time_field` (default `"ts"`): event time, as Unix seconds (number or
//!   numeric string) or RFC 3339 text.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use weir_guest_sdk::{DeserializeStage, Emitter, Error, FoldStage, FormatStage, KeyStage, Plugin, Record, Timestamp, Window};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    key_field: String,
    value_field: String,
    time_field: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { key_field: "device".into(), value_field: "temp".into(), time_field: "ts".into() }
    }
}

pub struct WindowStats {
    config: Config,
}

/// The event: key and value, the time having gone to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub key: String,
    pub value: f64,
}

/// The accumulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Plugin for WindowStats {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        for (name, value) in [("key_field", &config.key_field), ("value_field", &config.value_field), ("time_field", &config.time_field)] {
            if value.is_empty() {
                return Err(Error::msg(format!("`{name}` must name a field")));
            }
        }
        Ok(WindowStats { config })
    }
}

fn field<'a>(row: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Error> {
    row.get(name).ok_or_else(|| Error::msg(format!("missing field `{name}`")))
}

fn number(value: &Value, name: &str) -> Result<f64, Error> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed.filter(|x| x.is_finite()).ok_or_else(|| Error::msg(format!("field `{name}` is not a number: {value}")))
}

fn time(value: &Value, name: &str) -> Result<Timestamp, Error> {
    if let Ok(seconds) = number(value, name) {
        return Ok(Timestamp::from_unix_seconds_f64(seconds));
    }
    match value {
        Value::String(s) => Timestamp::parse_rfc3339(s).map_err(|e| e.context(format!("field `{name}`"))),
        _ => Err(Error::msg(format!("field `{name}` is neither Unix seconds nor an RFC 3339 time: {value}"))),
    }
}

impl DeserializeStage for WindowStats {
    type Event = Point;

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_, Point>) -> Result<(), Error> {
        // Fast path: borrow the keys and leave every value unparsed but the
        // three this plugin reads. Keys with escapes cannot be borrowed; such
        // rows take the general path below.
        if let Ok(row) = serde_json::from_slice::<HashMap<&str, &RawValue>>(record.value) {
            let c = &self.config;
            let raw = |name: &str| row.get(name).ok_or_else(|| Error::msg(format!("missing field `{name}`")));
            let parse = |name: &str| -> Result<Value, Error> { Ok(serde_json::from_str(raw(name)?.get())?) };
            let key = match parse(&c.key_field)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = number(&parse(&c.value_field)?, &c.value_field)?;
            let at = time(&parse(&c.time_field)?, &c.time_field)?;
            return out.emit_at(Point { key, value }, at);
        }
        let row: Map<String, Value> = record.json()?;
        let c = &self.config;
        let key = match field(&row, &c.key_field)? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let value = number(field(&row, &c.value_field)?, &c.value_field)?;
        let at = time(field(&row, &c.time_field)?, &c.time_field)?;
        out.emit_at(Point { key, value }, at)
    }
}

impl KeyStage for WindowStats {
    type Event = Point;

    fn key(&self, point: &Point) -> Result<String, Error> {
        Ok(point.key.clone())
    }
}

impl FoldStage for WindowStats {
    type Event = Point;
    type Acc = Stats;

    fn init(&self) -> Stats {
        Stats { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }

    fn fold(&self, acc: &mut Stats, point: Point) -> Result<(), Error> {
        acc.count += 1;
        acc.sum += point.value;
        acc.min = acc.min.min(point.value);
        acc.max = acc.max.max(point.value);
        Ok(())
    }
}

/// One line per window: exactly these fields.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub key: String,
    pub start: String,
    pub end: String,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl FormatStage for WindowStats {
    type Acc = Stats;
    type Output = Summary;

    fn format(&self, window: &Window, acc: Stats) -> Result<Summary, Error> {
        if acc.count == 0 {
            return Err(Error::msg("empty window"));
        }
        Ok(Summary {
            key: window.key.clone(),
            start: window.start.to_rfc3339(),
            end: window.end.to_rfc3339(),
            count: acc.count,
            mean: acc.sum / acc.count as f64,
            min: acc.min,
            max: acc.max,
        })
    }
}

weir_guest_sdk::export_plugin!(deserialize: WindowStats, key: WindowStats, fold: WindowStats, format: WindowStats);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_guest_sdk::testing;

    use super::*;

    #[test]
    fn reads_a_csv_row_of_the_telemetry() {
        let p: WindowStats = testing::configure(json!({})).unwrap();
        let row = br#"{"ts":"1.5945120943859746E9","device":"b8:27:eb:bf:9d:51","temp":"22.7"}"#;
        let events = testing::deserialize(&p, row).unwrap();
        assert_eq!(events[0].0, Point { key: "b8:27:eb:bf:9d:51".into(), value: 22.7 });
        assert_eq!(events[0].1, Timestamp::from_micros(1_594_512_094_385_975));
    }

    #[test]
    fn summarises_a_window() {
        let p: WindowStats = testing::configure(json!({ "key_field": "sensor", "value_field": "value" })).unwrap();
        let points = [3.0, 1.0, 2.0].map(|value| Point { key: "s".into(), value });
        let acc = testing::fold(&p, points).unwrap();
        let window = testing::window("s", "2020-07-12T00:00:00Z", "2020-07-12T01:00:00Z", 3);
        let out = testing::format(&p, &window, acc).unwrap();
        assert_eq!(out, json!({"key":"s","start":"2020-07-12T00:00:00Z","end":"2020-07-12T01:00:00Z","count":3,"mean":2.0,"min":1.0,"max":3.0}));
    }

    #[test]
    fn names_the_bad_field() {
        let p: WindowStats = testing::configure(json!({})).unwrap();
        let err = testing::deserialize(&p, br#"{"ts":"1","device":"d","temp":"warm"}"#).unwrap_err();
        assert_eq!(err.to_string(), "field `temp` is not a number: \"warm\"");
        let err = testing::deserialize(&p, br#"{"ts":"1","temp":"1"}"#).unwrap_err();
        assert_eq!(err.to_string(), "missing field `device`");
    }

    #[test]
    fn rejects_an_unknown_config_field() {
        let err = testing::configure::<WindowStats>(json!({ "colum": "x" })).err().unwrap();
        assert!(err.to_string().contains("unknown field `colum`"), "{err}");
    }
}
