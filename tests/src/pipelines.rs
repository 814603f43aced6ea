//! Pipelines against the real servers: producing to tansu, manifests with a
//! Kafka source and a DynamoDB sink, and comparing DynamoDB items with the
//! output of the same job over a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::services::{services, weir};
use crate::{manifest_text, plugin, run};

/// How long one `weir` run of these tests may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Produces `file`'s lines to `topic` (created with `partitions`), keyed by
/// `key_field` when given, at `rate` messages a second (0: as fast as it can).
pub fn produce(topic: &str, partitions: u32, file: &Path, key_field: Option<&str>, rate: u32) {
    produce_to(&services().brokers, topic, Some(partitions), file, key_field, rate);
}

/// `weir produce` to `brokers` (see [`produce`]); fails the test, saying
/// why, if it fails.
pub fn produce_to(brokers: &str, topic: &str, partitions: Option<u32>, file: &Path, key_field: Option<&str>, rate: u32) {
    let (rate, partitions) = (rate.to_string(), partitions.map(|p| p.to_string()));
    let mut args = vec!["produce", "--brokers", brokers, "--topic", topic, "--replay", file.to_str().unwrap(), "--rate", &rate];
    if let Some(p) = &partitions {
        args.extend(["--partitions", p]);
    }
    if let Some(k) = key_field {
        args.extend(["--key-field", k]);
    }
    let out = weir(&args, Duration::from_secs(600));
    assert!(out.status.success(), "produce failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Produces `file` to `topic` (created with `partitions` when given) keyed
/// by `id` at `rate` messages a second, on a thread; join it to wait.
pub fn produce_in_background(topic: &str, partitions: Option<u32>, file: &Path, rate: u32) -> std::thread::JoinHandle<()> {
    let (brokers, topic, file) = (services().brokers, topic.to_owned(), file.to_owned());
    std::thread::spawn(move || produce_to(&brokers, &topic, partitions, &file, Some("id"), rate))
}

/// A `[source]` table reading `topic` in consumer group `group`, with the
/// short group timeouts tansu needs, stopping after 4 s without messages.
pub fn kafka_source(topic: &str, group: &str) -> String {
    format!(
        r#"
[source]
kind = "kafka"
brokers = "${{WEIR_KAFKA_BROKERS}}"
topics = ["{topic}"]
group_id = "{group}"
exit_when_idle = "4s"
properties = {{ "session.timeout.ms" = "6000", "max.poll.interval.ms" = "10000", "heartbeat.interval.ms" = "1000" }}
"#
    )
}

/// A `[sink]` table writing `table` on the test DynamoDB Local.
pub fn dynamodb_sink(table: &str, partition_key: &str) -> String {
    format!(
        r#"
[sink]
kind = "dynamodb"
table = "{table}"
partition_key = "{partition_key}"
sort_key = "window_start"
create_table = true
endpoint = "${{WEIR_DYNAMODB_ENDPOINT}}"
region = "us-east-1"
"#
    )
}

/// Writes `text` to `dir/pipeline.toml`; returns the path.
pub fn write_manifest(dir: &Path, text: &str) -> String {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `weir run manifest` to its end; returns its log.
pub fn run_to_end(manifest: &str) -> String {
    let out = weir(&["run", manifest], RUN_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "weir run failed:\n{stderr}");
    stderr
}

/// Items without the sort key weir adds, as canonical JSON text.
pub fn items_without(items: Vec<BTreeMap<String, Value>>, drop: &[&str]) -> BTreeSet<String> {
    items
        .into_iter()
        .map(|mut item| {
            for d in drop {
                item.remove(*d);
            }
            serde_json::to_string(&normalize(serde_json::to_value(item).unwrap())).unwrap()
        })
        .collect()
}

/// DynamoDB stores a number's value exactly but not its spelling: `22.0`
/// comes back as `22`. Compare numbers by value, digit for digit.
pub fn normalize(value: Value) -> Value {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            let text = if text.contains('.') && !text.contains(['e', 'E']) { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
            Value::Number(serde_json::from_str(&text).unwrap())
        }
        // Sorted keys, whether or not serde_json preserves order in this build.
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k, normalize(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// JSON lines as a set of canonical texts (numbers by value, keys sorted).
pub fn canonical(lines: &[String]) -> BTreeSet<String> {
    lines.iter().map(|l| serde_json::to_string(&normalize(serde_json::from_str(l).unwrap())).unwrap()).collect()
}

/// Sensor readings 2 ms apart, as a JSON-lines file, and what a plain file
/// run of the restart pipeline makes of them.
pub fn restart_data(dir: &Path, records: usize, sensors: usize) -> std::path::PathBuf {
    let path = dir.join("readings.jsonl");
    let start = 1_704_067_200_000i64; // 2024-01-01T00:00:00Z in ms
    let mut text = String::new();
    for i in 0..records {
        let ms = start + 2 * i as i64;
        let time = weir::Timestamp(ms * 1000).to_string();
        let value = ((i * 37) % 1000) as f64 / 10.0;
        text.push_str(&format!("{{\"id\":\"sensor-{}\",\"value\":{value},\"time\":\"{time}\"}}\n", i % sensors + 1));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The sensor-average pipeline of the Kafka tests: 1 s windows, an event
/// clock waiting 3 s, checkpoints every 300 ms in `checkpoint`.
pub fn restart_pipeline(source: &str, sink: &str, checkpoint: &Path) -> String {
    format!(
        r#"{source}
[stages]
plugin = "{plugin}"
[stages.format]
config = {{ start_at = "2024-01-01T00:00:00Z" }}
[clock]
kind = "event"
wait_for_system_duration = "3s"
[window]
kind = "tumbling"
length = "1s"
align_to = "2024-01-01T00:00:00Z"
{sink}
[checkpoint]
dir = "{checkpoint}"
interval = "300ms"
"#,
        plugin = plugin("sensor_average").display(),
        checkpoint = checkpoint.display(),
    )
}

/// What a plain file run of [`restart_pipeline`] makes of `data`.
pub fn expected_for(dir: &Path, data: &Path) -> BTreeSet<String> {
    let file_source = format!("[source]\nkind = \"jsonl\"\npath = \"{}\"\n", data.display());
    let text = restart_pipeline(&file_source, "[sink]\nkind = \"stdout\"\n", &dir.join("unused-checkpoints"));
    let m = manifest_text(dir, &text);
    let m = weir::manifest::Manifest { checkpoint: None, ..m };
    canonical(&run(&m).unwrap().lines)
}
