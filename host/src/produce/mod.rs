//! `weir produce`: test data into a Kafka topic — a random-walk sensor
//! generator (seeds 002 and 003) or a replay of a CSV or JSON-lines file —
//! or the generator's readings straight into a DynamoDB table
//! ([`dynamodb`], seed 003's mock sensors); or the records of a
//! dead-letter file or topic sent again as they were read
//! ([`dead_letters`], [`dead_letter_topic`]).

pub mod dead_letter_topic;
pub mod dead_letters;
pub mod dynamodb;

use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::producer::BaseRecord;

use crate::sink::kafka::{ensure_topic, flush, producer, send};
use crate::source::{CsvReader, LinesReader, Source};

/// What to send.
#[derive(Debug, Clone)]
pub enum Payload {
    /// `sensors` random-walk sensors, `count` readings in all, at `rate` per second (0: as fast as possible).
    Generate {
        /// How many sensors.
        sensors: usize,
        /// Readings in all.
        count: u64,
        /// Readings per second; 0 for no limit.
        rate: u64,
        /// Seed for the random walk, so runs can be repeated.
        seed: u64,
    },
    /// Every record of a file, keyed by `key_field` when given.
    Replay {
        /// The file (`.csv` or JSON lines).
        path: std::path::PathBuf,
        /// The field whose value becomes the Kafka key.
        key_field: Option<String>,
        /// Messages per second; 0 for no limit.
        rate: u64,
    },
    /// The records of a dead-letter file, each with its own key,
    /// timestamp and headers (windows in it are skipped).
    DeadLetters {
        /// The file (`[dead_letter] kind = "file"`).
        path: std::path::PathBuf,
        /// Messages per second; 0 for no limit.
        rate: u64,
    },
    /// The records of a Kafka dead-letter topic on the same brokers, each
    /// partition read to the end a fetch finds, each record with its own
    /// key, timestamp and headers (windows in it are skipped).
    DeadLetterTopic {
        /// The topic (`[dead_letter] kind = "kafka"`).
        topic: String,
        /// Messages per second; 0 for no limit.
        rate: u64,
    },
}

/// Sends `payload` to `topic`, showing progress on stderr; returns how many
/// messages were acknowledged.
pub fn produce(brokers: &str, topic: &str, partitions: i32, payload: &Payload) -> Result<u64, anyhow::Error> {
    if let Payload::DeadLetterTopic { topic: from, .. } = payload
        && from == topic
    {
        anyhow::bail!("the records of dead-letter topic {from} go to another topic, not back into it (name the input topic with --topic)");
    }
    // Read whole before anything is sent: a file or topic half understood
    // sends nothing.
    let (resends, windows, from) = match payload {
        Payload::DeadLetters { path, .. } => {
            let (resends, windows) = dead_letters::read(path)?;
            (resends, windows, path.display().to_string())
        }
        Payload::DeadLetterTopic { topic: from, .. } => {
            let (resends, windows) = dead_letter_topic::read(brokers, from)?;
            eprintln!("produce: {} records and {windows} windows read from dead-letter topic {from}", resends.len());
            (resends, windows, from.clone())
        }
        _ => (Vec::new(), 0, String::new()),
    };
    ensure_topic(brokers, topic, partitions)?;
    // Messages without a key go to a random partition each, not in sticky
    // runs to one partition, so replayed test data spreads like real traffic.
    let spread = [("sticky.partitioning.linger.ms".to_owned(), "0".to_owned())];
    let (producer, failures) = producer(brokers, &spread, topic)?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    let rate = match payload {
        Payload::Generate { rate, .. } => *rate,
        Payload::Replay { rate, .. } | Payload::DeadLetters { rate, .. } | Payload::DeadLetterTopic { rate, .. } => *rate,
    };
    let mut send = |record: BaseRecord<'_, [u8], [u8]>, sent: &mut u64| -> Result<(), anyhow::Error> {
        send(&producer, record).map_err(|err| anyhow::anyhow!("cannot send to {topic}: {err}"))?;
        *sent += 1;
        if rate > 0 {
            // Paced: message n goes out at n / rate seconds.
            let due = Duration::from_secs_f64(*sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("produce: {sent} messages to {topic} ({:.0}/s)", *sent as f64 / started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        Ok(())
    };
    match payload {
        Payload::Generate { sensors, count, rate, seed } => {
            for r in readings(*sensors, *count, *rate, *seed, crate::Timestamp::now()) {
                let value = format!("{{\"id\":\"{}\",\"value\":{:.2},\"time\":\"{}\"}}", r.sensor, r.value, r.time);
                send(BaseRecord::to(topic).payload(value.as_bytes()).key(r.sensor.as_bytes()), &mut sent)?;
            }
        }
        Payload::Replay { path, key_field, .. } => {
            let mut source = open(path)?;
            loop {
                let batch = source.next_batch(1024)?;
                if batch.is_empty() {
                    break;
                }
                for record in batch {
                    let key = key_field.as_ref().and_then(|f| {
                        let v: serde_json::Value = serde_json::from_slice(&record.value).ok()?;
                        v.get(f).map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_owned))
                    });
                    let mut message = BaseRecord::to(topic).payload(record.value.as_slice());
                    if let Some(key) = &key {
                        message = message.key(key.as_bytes());
                    }
                    send(message, &mut sent)?;
                }
            }
        }
        Payload::DeadLetters { .. } | Payload::DeadLetterTopic { .. } => {
            if windows > 0 {
                eprintln!("produce: {windows} windows in {from} skipped (a window is not a record to send again)");
            }
            for record in &resends {
                let mut message = BaseRecord::to(topic).payload(record.value.as_slice());
                if let Some(key) = &record.key {
                    message = message.key(key.as_slice());
                }
                if let Some(at) = record.timestamp_ms {
                    message = message.timestamp(at);
                }
                if !record.headers.is_empty() {
                    message = message.headers(crate::sink::kafka::headers(&record.headers, 0));
                }
                send(message, &mut sent)?;
            }
        }
    }
    flush(&producer, &failures, topic)?;
    eprintln!("produce: {sent} messages to {topic} in {:.2?}", started.elapsed());
    Ok(sent)
}

/// One generated reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// `sensor-1`, `sensor-2`, ...
    pub sensor: String,
    /// Temperature, a random walk per sensor from 15–25 in steps under 0.5.
    pub value: f64,
    /// When it was taken: `start` plus one step of `1 / rate` s per reading.
    pub time: crate::Timestamp,
}

/// `count` readings of `sensors` random-walk sensors in turn, from
/// `start`, `rate` per second (0: one a second); the same `seed`
/// gives the same readings.
pub fn readings(sensors: usize, count: u64, rate: u64, seed: u64, start: crate::Timestamp) -> impl Iterator<Item = Reading> {
    let sensors = sensors.max(1);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut values: Vec<f64> = (0..sensors).map(|_| rng.random_range(15.0..25.0)).collect();
    let start_ms = start.0 / 1000;
    (0..count).map(move |n| {
        let sensor = (n % sensors as u64) as usize;
        values[sensor] += rng.random_range(-0.5..0.5);
        // Two decimals, as a thermometer reports (and the same number in every store).
        let value = (values[sensor] * 100.0).round() / 100.0;
        let time = crate::Timestamp((start_ms + n as i64 * 1000 / rate.max(1) as i64) * 1000);
        Reading { sensor: format!("sensor-{}", sensor + 1), value, time }
    })
}

fn open(path: &Path) -> Result<Box<dyn Source>, anyhow::Error> {
    Ok(if path.extension().is_some_and(|e| e == "csv") { Box::new(CsvReader::open(path)?) } else { Box::new(LinesReader::open(path)?) })
}
