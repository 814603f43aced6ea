//! Seed 000: sensor readings as JSON, keyed by sensor `id`, folded into the
//! list of (value, time) per window, formatted as the DynamoDB item the
//! Bytewax example writes: `id`, `average`, `num_events`, `from`, `to`, with
//! the float-derived numbers as exact decimals (Python's `Decimal(str(x))`).

use serde::{Deserialize, Serialize};
use weir_guest_sdk::{
    Decimal, DeserializeStage, Emitter, Error, Event, FieldType, FoldStage, FormatStage, Identity, KeyStage, Plugin, Record, Row, Schema, Timestamp, Window,
};

/// A sensor reading as it arrives: `{"id": "sensor-1", "value": 21.5, "time": "2024-01-01T00:00:01Z"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub id: String,
    pub value: f64,
    pub time: String,
}

/// Bytewax's `list` builder and `append` folder: every (value, time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples(pub Vec<(f64, Timestamp)>);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The instant `from` and `to` count seconds from (the seed's `start_at`).
    /// Defaults to each window's start.
    start_at: Option<String>,
}

pub struct SensorAverage {
    start_at: Option<Timestamp>,
}

impl Plugin for SensorAverage {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        let start_at = config.start_at.as_deref().map(Timestamp::parse_rfc3339).transpose().map_err(|e| e.context("start_at"))?;
        Ok(SensorAverage { start_at })
    }
}

fn identity() -> Identity {
    Identity::new("sensor-average", 1)
}

// This plugin serves all four stages, as a Bytewax job's own functions
// would: its own parser, its own key. (`window-stats` shows the shorter way,
// letting the host decode and key.)
impl DeserializeStage for SensorAverage {
    fn writes(&self) -> Schema {
        Schema::new("sample", 1).field("id", FieldType::Text).field("value", FieldType::Float).field("time", FieldType::Time)
    }

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let reading: Reading = record.json()?;
        let time = Timestamp::parse_rfc3339(&reading.time).map_err(|e| e.context("field `time`"))?;
        out.emit(Event::new().text("id", reading.id).float("value", reading.value).time("time", time))
    }
}

impl KeyStage for SensorAverage {
    fn reads(&self) -> Schema {
        Schema::new("sample", 1).field("id", FieldType::Text)
    }

    fn key(&self, sample: &Row<'_>) -> Result<String, Error> {
        Ok(sample.text("id")?.to_owned())
    }
}

impl FoldStage for SensorAverage {
    type Acc = Samples;

    fn reads(&self) -> Schema {
        Schema::new("sample", 1).field("value", FieldType::Float).field("time", FieldType::Time)
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> Samples {
        Samples::default()
    }

    fn fold(&self, acc: &mut Samples, sample: &Row<'_>) -> Result<(), Error> {
        acc.0.push((sample.float("value")?, sample.time("time")?));
        Ok(())
    }
}

/// The item, field for field as seed 000 writes it.
#[derive(Debug, Serialize)]
pub struct Item {
    pub id: String,
    pub average: Decimal,
    pub num_events: u64,
    pub from: Decimal,
    pub to: Decimal,
}

impl FormatStage for SensorAverage {
    type Acc = Samples;
    type Output = Item;

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn format(&self, window: &Window, acc: Samples) -> Result<Item, Error> {
        if acc.0.is_empty() {
            return Err(Error::msg("empty window"));
        }
        let sum: f64 = acc.0.iter().map(|(v, _)| v).sum();
        let average = sum / acc.0.len() as f64;
        let start_at = self.start_at.unwrap_or(window.start);
        let seconds = |t: Timestamp| (t.micros() - start_at.micros()) as f64 / 1e6;
        let first = acc.0.iter().map(|(_, t)| *t).min().expect("not empty");
        let last = acc.0.iter().map(|(_, t)| *t).max().expect("not empty");
        let decimal = |x: f64| Decimal::from_f64(x).ok_or_else(|| Error::msg(format!("{x} is not a finite number")));
        Ok(Item {
            id: window.key.clone(),
            average: decimal(average)?,
            num_events: acc.0.len() as u64,
            from: decimal(seconds(first))?,
            to: decimal(seconds(last))?,
        })
    }
}

weir_guest_sdk::export_plugin!(deserialize: SensorAverage, key: SensorAverage, fold: SensorAverage, format: SensorAverage);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_guest_sdk::testing;

    use super::*;

    fn plugin() -> SensorAverage {
        testing::configure(json!({ "start_at": "2024-01-01T00:00:00Z" })).unwrap()
    }

    #[test]
    fn averages_a_window_like_the_seed() {
        let p = plugin();
        let lines = [r#"{"id":"s1","value":20.0,"time":"2024-01-01T00:00:01Z"}"#, r#"{"id":"s1","value":21.0,"time":"2024-01-01T00:00:03.5Z"}"#];
        let samples: Vec<Event> = lines.iter().flat_map(|l| testing::deserialize(&p, l.as_bytes()).unwrap()).collect();
        assert_eq!(testing::key(&p, &samples[0]).unwrap(), "s1");
        let acc = testing::fold(&p, &samples).unwrap();
        let window = testing::window("s1", "2024-01-01T00:00:00Z", "2024-01-01T00:00:05Z", 2);
        let item = testing::format(&p, &window, acc).unwrap();
        assert_eq!(item, json!({ "id": "s1", "average": 20.5, "num_events": 2, "from": 1.0, "to": 3.5 }));
    }

    #[test]
    fn decimals_keep_python_text() {
        let p = plugin();
        let acc = Samples(vec![(0.1, Timestamp::from_unix_seconds(1_704_067_200)), (0.2, Timestamp::from_unix_seconds(1_704_067_200))]);
        let window = testing::window("s1", "2024-01-01T00:00:00Z", "2024-01-01T00:00:05Z", 2);
        let text = serde_json::to_string(&FormatStage::format(&p, &window, acc).unwrap()).unwrap();
        assert_eq!(text, r#"{"id":"s1","average":0.15000000000000002,"num_events":2,"from":0.0,"to":0.0}"#);
    }

    #[test]
    fn bad_records_say_which_field() {
        let p = plugin();
        let err = testing::deserialize(&p, br#"{"id":"s1","value":1,"time":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("field `time`"), "{err}");
        let err = testing::deserialize(&p, br#"{"id":"s1","time":"2024-01-01T00:00:00Z"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `value`"), "{err}");
    }
}
