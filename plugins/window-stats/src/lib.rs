//! Count, mean, min and max of one numeric field per key and window — seed
//! 001's per-device telemetry windows and seed 002's downsampling.
//!
//! Serves fold and format; the host decodes the JSON (`builtin = "json"`),
//! keys (`[stages.key] field`) and times (`[clock] time_field`) the events.
//!
//! Config: `value_field` (default `"temp"`), the numeric field summarised.

use serde::{Deserialize, Serialize};
use weir_guest_sdk::{Error, Events, FieldType, FoldStage, FormatStage, Identity, Plugin, Row, Schema, Window};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    value_field: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { value_field: "temp".into() }
    }
}

pub struct WindowStats {
    config: Config,
}

/// The accumulator (what `window-stats` v1 is, in any language).
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
        if config.value_field.is_empty() {
            return Err(Error::msg("`value_field` must name a field"));
        }
        Ok(WindowStats { config })
    }
}

fn identity() -> Identity {
    Identity::new("window-stats", 1)
}

impl Stats {
    fn add(&mut self, value: f64) {
        if self.count == 0 {
            (self.min, self.max) = (value, value);
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

impl FoldStage for WindowStats {
    type Acc = Stats;

    fn reads(&self) -> Schema {
        Schema::new("window-stats", 1).field(&self.config.value_field, FieldType::Float)
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> Stats {
        Stats { count: 0, sum: 0.0, min: 0.0, max: 0.0 }
    }

    fn fold(&self, acc: &mut Stats, event: &Row<'_>) -> Result<(), Error> {
        acc.add(event.float(&self.config.value_field)?);
        Ok(())
    }

    // Two sessions became one (session windows).
    fn merge(&self, into: &mut Stats, from: Stats) -> Result<(), Error> {
        if from.count > 0 {
            if into.count == 0 {
                *into = from;
            } else {
                into.count += from.count;
                into.sum += from.sum;
                into.min = into.min.min(from.min);
                into.max = into.max.max(from.max);
            }
        }
        Ok(())
    }

    // The whole column at once: no per-event lookups.
    fn fold_events(&self, acc: &mut Stats, events: &Events<'_>) -> Vec<(usize, Error)> {
        match events.floats(&self.config.value_field) {
            Ok(values) => {
                values.iter().for_each(|&v| acc.add(v));
                Vec::new()
            }
            Err(err) => (0..events.len()).map(|i| (i, err.clone())).collect(),
        }
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

    fn accumulator(&self) -> Identity {
        identity()
    }

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

weir_guest_sdk::export_plugin!(fold: WindowStats, format: WindowStats);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_guest_sdk::{Event, testing};

    use super::*;

    #[test]
    fn summarises_a_window() {
        let p: WindowStats = testing::configure(json!({ "value_field": "value" })).unwrap();
        let events = [3.0, 1.0, 2.0].map(|value| Event::new().float("value", value));
        let acc = testing::fold(&p, &events).unwrap();
        let window = testing::window("s", "2020-07-12T00:00:00Z", "2020-07-12T01:00:00Z", 3);
        let out = testing::format(&p, &window, acc).unwrap();
        assert_eq!(out, json!({"key":"s","start":"2020-07-12T00:00:00Z","end":"2020-07-12T01:00:00Z","count":3,"mean":2.0,"min":1.0,"max":3.0}));
    }

    #[test]
    fn a_later_batch_adds_to_the_window() {
        let p: WindowStats = testing::configure(json!({})).unwrap();
        let first = testing::fold(&p, &[Event::new().float("temp", -4.0)]).unwrap();
        let acc = testing::fold_into(&p, Some(&first), &[Event::new().float("temp", 10.0)]).unwrap();
        assert_eq!(acc, Stats { count: 2, sum: 6.0, min: -4.0, max: 10.0 });
    }

    #[test]
    fn rejects_an_unknown_config_field() {
        let err = testing::configure::<WindowStats>(json!({ "colum": "x" })).err().unwrap();
        assert!(err.to_string().contains("unknown field `colum`"), "{err}");
    }
}
