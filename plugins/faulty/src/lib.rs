//! A plugin that misbehaves on purpose, for the host's containment tests.
//! It serves all four stages over `{"key": "...", "value": 1.5, "time": "RFC 3339"}`
//! records, and each stage's config says how to fail:
//!
//! - `mode`: `"ok"` (default), `"trap"` (panics), `"loop"` (never returns),
//!   `"alloc"` (allocates without bound), `"error"` (returns an error),
//!   `"reject"` (refuses its config), `"sleep"` (sleeps 30 s in a WASI
//!   call), `"stack"` (recurses until the stack overflows), `"flood"` (logs
//!   20,000 lines of 16 KiB), `"huge"` (deserialize: emits 64 MiB of events
//!   for the record), `"overflow"` (format: adds `"big": 1e200`, a number
//!   DynamoDB refuses).
//! - `when`: misbehave only for records whose raw text (format: whose key)
//!   contains this; empty means always.
//!
//! Two build variants exist for the hot-swap tests (`scripts/build-plugins.sh`
//! builds both): feature `v2` writes accumulator state version 2 (the sum
//! plus the window's maximum), migrates version 1 accumulators (their
//! maximum is unknown: `null`), and formats `"version": 2`; feature
//! `trap-on-start` panics while starting, whatever its config.

use std::hint::black_box;

use serde::{Deserialize, Serialize};
use weir_guest_sdk::{DeserializeStage, Emitter, Error, Event, FieldType, FoldStage, FormatStage, Identity, KeyStage, Plugin, Record, Row, Schema, Timestamp, Window};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Ok,
    Trap,
    Loop,
    Alloc,
    Error,
    Reject,
    Sleep,
    Stack,
    Flood,
    Huge,
    Overflow,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    mode: Mode,
    when: String,
}

pub struct Faulty {
    mode: Mode,
    when: String,
}

#[derive(Debug, Deserialize)]
struct Input {
    key: String,
    value: f64,
    time: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sum {
    pub count: u64,
    pub sum: f64,
}

/// Version 2 of the accumulator: the sum and the maximum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SumV2 {
    pub count: u64,
    pub sum: f64,
    /// The largest value; `None` when the window began under version 1,
    /// whose accumulator did not keep it.
    pub max: Option<f64>,
    /// Whether the window began under version 1.
    #[serde(default)]
    pub migrated: bool,
}

/// The accumulator this build writes.
pub fn identity() -> Identity {
    Identity::new("faulty-sum", if cfg!(feature = "v2") { 2 } else { 1 })
}

#[cfg(not(feature = "v2"))]
type Acc = Sum;
#[cfg(feature = "v2")]
type Acc = SumV2;

impl Plugin for Faulty {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        if cfg!(feature = "trap-on-start") {
            panic!("built with `trap-on-start`: trapping while starting, on purpose");
        }
        if config.mode == Mode::Reject {
            return Err(Error::msg("mode \"reject\": this config is refused on purpose"));
        }
        Ok(Faulty { mode: config.mode, when: config.when })
    }
}

impl Faulty {
    fn misbehave(&self, subject: &str) -> Result<(), Error> {
        if !subject.contains(&self.when) {
            return Ok(());
        }
        match self.mode {
            Mode::Ok | Mode::Reject | Mode::Huge | Mode::Overflow => Ok(()),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                Ok(())
            }
            Mode::Stack => {
                #[allow(unconditional_recursion)]
                fn deeper(n: u64) -> u64 {
                    let frame = black_box([n; 64]);
                    deeper(n + 1) + frame[(n % 64) as usize]
                }
                black_box(deeper(0));
                Ok(())
            }
            Mode::Flood => {
                let line = "x".repeat(16 * 1024);
                for _ in 0..20_000 {
                    weir_guest_sdk::warn(&line);
                }
                Ok(())
            }
            Mode::Error => Err(Error::msg(format!("mode \"error\": refusing `{subject}`"))),
            Mode::Trap => panic!("mode \"trap\": trapping on `{subject}`"),
            Mode::Loop => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            Mode::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                    black_box(&hoard);
                }
            }
        }
    }
}

impl DeserializeStage for Faulty {
    fn writes(&self) -> Schema {
        Schema::new("faulty", 1).field("key", FieldType::Text).field("value", FieldType::Float).field("raw", FieldType::Text).field("time", FieldType::Time)
    }

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let raw = record.text()?;
        self.misbehave(raw)?;
        let input: Input = record.json()?;
        let time = Timestamp::parse_rfc3339(&input.time)?;
        let event = |raw: &str| Event::new().text("key", input.key.clone()).float("value", input.value).text("raw", raw).time("time", time);
        if self.mode == Mode::Huge && raw.contains(&self.when) {
            let filler = "y".repeat(64 * 1024);
            for _ in 0..1024 {
                out.emit(event(&filler))?;
            }
        }
        out.emit(event(raw))
    }
}

impl KeyStage for Faulty {
    fn reads(&self) -> Schema {
        Schema::new("faulty", 1).field("key", FieldType::Text).field("raw", FieldType::Text)
    }

    fn key(&self, event: &Row<'_>) -> Result<String, Error> {
        self.misbehave(event.text("raw")?)?;
        Ok(event.text("key")?.to_owned())
    }
}

fn fold_reads() -> Schema {
    Schema::new("faulty", 1).field("value", FieldType::Float).field("raw", FieldType::Text)
}

#[cfg(not(feature = "v2"))]
impl FoldStage for Faulty {
    type Acc = Sum;

    fn reads(&self) -> Schema {
        fold_reads()
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> Sum {
        Sum::default()
    }

    fn fold(&self, acc: &mut Sum, event: &Row<'_>) -> Result<(), Error> {
        self.misbehave(event.text("raw")?)?;
        acc.count += 1;
        acc.sum += event.float("value")?;
        Ok(())
    }
}

#[cfg(feature = "v2")]
impl FoldStage for Faulty {
    type Acc = SumV2;

    fn reads(&self) -> Schema {
        fold_reads()
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> SumV2 {
        SumV2 { count: 0, sum: 0.0, max: None, migrated: false }
    }

    fn fold(&self, acc: &mut SumV2, event: &Row<'_>) -> Result<(), Error> {
        self.misbehave(event.text("raw")?)?;
        let value = event.float("value")?;
        acc.count += 1;
        acc.sum += value;
        if !acc.migrated {
            acc.max = Some(acc.max.map_or(value, |m| m.max(value)));
        }
        Ok(())
    }

    fn migrate(&self, from: &Identity, old: &[u8]) -> Result<SumV2, Error> {
        match (from.name.as_str(), from.version) {
            ("faulty-sum", 1) => {
                let old: Sum = weir_guest_sdk::decode_state(old)?;
                Ok(SumV2 { count: old.count, sum: old.sum, max: None, migrated: true })
            }
            _ => Err(Error::msg(format!("no migration from `{from}`"))),
        }
    }
}

impl FormatStage for Faulty {
    type Acc = Acc;
    type Output = serde_json::Value;

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn format(&self, window: &Window, acc: Acc) -> Result<serde_json::Value, Error> {
        self.misbehave(&window.key)?;
        let mut object = serde_json::json!({ "key": window.key, "start": window.start.to_rfc3339(), "count": acc.count, "sum": acc.sum });
        if cfg!(feature = "v2") {
            object["version"] = 2.into();
        }
        if self.mode == Mode::Overflow && window.key.contains(&self.when) {
            object["big"] = 1e200.into();
        }
        #[cfg(feature = "v2")]
        {
            object["max"] = acc.max.into();
        }
        Ok(object)
    }
}

weir_guest_sdk::export_plugin!(deserialize: Faulty, key: Faulty, fold: Faulty, format: Faulty);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_guest_sdk::testing;

    use super::*;

    #[test]
    fn ok_mode_sums() {
        let p: Faulty = testing::configure(json!({})).unwrap();
        let events = testing::deserialize(&p, br#"{"key":"a","value":2,"time":"2022-01-01T00:00:00Z"}"#).unwrap();
        let acc = testing::fold(&p, &events).unwrap();
        assert_eq!((acc.count, acc.sum), (1, 2.0));
    }

    #[test]
    fn error_mode_fails_only_matching_records() {
        let p: Faulty = testing::configure(json!({ "mode": "error", "when": "bad" })).unwrap();
        assert!(testing::deserialize(&p, br#"{"key":"a","value":2,"time":"2022-01-01T00:00:00Z"}"#).is_ok());
        assert!(testing::deserialize(&p, br#"{"key":"bad","value":2,"time":"2022-01-01T00:00:00Z"}"#).is_err());
    }

    #[cfg(feature = "v2")]
    #[test]
    fn v2_migrates_v1_sums_with_an_unknown_maximum() {
        let p: Faulty = testing::configure(json!({})).unwrap();
        let acc = testing::migrate(&p, Identity::new("faulty-sum", 1), &Sum { count: 3, sum: 4.5 }).unwrap();
        assert_eq!(acc, SumV2 { count: 3, sum: 4.5, max: None, migrated: true });
        assert!(testing::migrate(&p, Identity::new("faulty-sum", 7), &Sum::default()).is_err());
    }

    #[cfg(not(feature = "v2"))]
    #[test]
    fn v1_refuses_to_migrate() {
        let p: Faulty = testing::configure(json!({})).unwrap();
        let err = testing::migrate(&p, Identity::new("faulty-sum", 2), &SumV2 { count: 1, sum: 1.0, max: Some(1.0), migrated: false }).unwrap_err();
        assert!(err.to_string().contains("cannot read accumulators `faulty-sum v2`"), "{err}");
    }

    #[test]
    fn reject_mode_refuses_config() {
        let err = testing::configure::<Faulty>(json!({ "mode": "reject" })).err().unwrap();
        assert!(err.to_string().contains("refused on purpose"), "{err}");
    }
}
