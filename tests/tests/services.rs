//! The seed pipelines end to end against real servers on loopback: tansu
//! (Kafka protocol) and AWS's DynamoDB Local, started by scripts/test.sh.
//! Every test here fails, saying why, when the servers are not there.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::pipelines::*;
use weir_tests::services::{Running, consume, scan, services, unique, weir};
use weir_tests::{expected, manifest_text, plugin, root, run};

#[test]
fn seed_000_from_kafka_into_dynamodb_with_exact_decimals() {
    let s = services();
    let (topic, table) = (unique("seed000"), unique("seed000"));
    produce(&topic, 1, &root().join("examples/seed-000-sensor-average/input.jsonl"), Some("id"), 0);
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"{source}
[stages]
plugin = "{plugin}"
[stages.format]
config = {{ start_at = "2024-01-01T00:00:00Z" }}
[clock]
kind = "event"
wait_for_system_duration = "10s"
[window]
kind = "tumbling"
length = "5s"
align_to = "2024-01-01T00:00:00Z"
{sink}"#,
        source = kafka_source(&topic, &unique("g")),
        plugin = plugin("sensor_average").display(),
        sink = dynamodb_sink(&table, "id"),
    );
    run_to_end(&write_manifest(dir.path(), &manifest));
    let items = scan(&s.dynamodb, &table);
    let want = canonical(&expected("examples/seed-000-sensor-average/expected.jsonl"));
    assert_eq!(items_without(items, &["window_start"]), want);

    // `weir query` reads one sensor's windows back in time order, by range.
    let out = weir(
        &[
            "query",
            "--table",
            &table,
            "--partition-key",
            "id",
            "--key",
            "sensor-2",
            "--from",
            "2024-01-01T00:00:05Z",
            "--to",
            "2024-01-01T00:00:20Z",
            "--endpoint",
            &s.dynamodb,
            "--region",
            "us-east-1",
        ],
        RUN_LIMIT,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let froms: Vec<String> = rows.iter().map(|r| r["from"].to_string()).collect();
    assert_eq!(froms, ["5.308", "11.342", "15.75"], "{rows:?}");
    assert!(rows.iter().all(|r| r["id"] == "sensor-2"));
}

#[test]
fn an_item_over_400_kb_is_a_dead_letter_and_the_rest_is_written() {
    let s = services();
    let table = unique("big");
    let dir = tempfile::tempdir().unwrap();
    // Key `big` collects 450 items of 1 KB (one window over the limit);
    // key `small` collects three.
    let mut input = String::new();
    for i in 0..450 {
        input.push_str(&format!("{{\"user\":\"big\",\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(1000)));
    }
    for i in 0..3 {
        input.push_str(&format!("{{\"user\":\"small\",\"n\":{i}}}\n"));
    }
    std::fs::write(dir.path().join("input.jsonl"), input).unwrap();
    let manifest = format!(
        r#"
[source]
kind = "jsonl"
path = "input.jsonl"
[stages]
plugin = "{plugin}"
[stages.key]
config = {{ field = "user" }}
[clock]
kind = "system"
[window]
kind = "collect"
max_size = 1000
timeout = "1h"
{sink}
[dead_letter]
kind = "file"
path = "dead.jsonl"
"#,
        plugin = plugin("collect_list").display(),
        sink = dynamodb_sink(&table, "user_key"),
    );
    let stderr = run_to_end(&write_manifest(dir.path(), &manifest));
    assert!(stderr.contains("1 windows written") && stderr.contains("1 failed"), "{stderr}");
    let items = scan(&s.dynamodb, &table);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user_key"], "small");
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    let dead: Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["key"], "big");
    assert!(dead["reason"].as_str().unwrap().contains("over DynamoDB's 409600-byte limit"), "{dead}");
}

#[test]
fn telemetry_replayed_into_three_partitions_matches_the_file_run() {
    let s = services();
    let (topic, table) = (unique("telemetry"), unique("telemetry"));
    let csv = root().join("examples/seed-001-telemetry/iot_telemetry_data_1000.csv");
    let started = Instant::now();
    produce(&topic, 3, &csv, Some("device"), 0);
    let produced = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"{source}
[stages]
plugin = "{plugin}"
config = {{ value_field = "temp" }}
[stages.deserialize]
builtin = "json"
[stages.key]
field = "device"
[clock]
kind = "event"
time_field = "ts"
wait_for_system_duration = "30s"
[window]
kind = "tumbling"
length = "1h"
align_to = "2020-01-01T00:00:00Z"
{sink}"#,
        source = kafka_source(&topic, &unique("g")),
        plugin = plugin("window_stats").display(),
        sink = dynamodb_sink(&table, "key"),
    );
    let started = Instant::now();
    let stderr = run_to_end(&write_manifest(dir.path(), &manifest));
    eprintln!("telemetry: produced 999 records in {produced:?}; weir ran (including the 4 s idle exit) in {:?}", started.elapsed());
    assert!(stderr.contains("999 records"), "{stderr}");
    let items = scan(&s.dynamodb, &table);
    let want = canonical(&expected("examples/seed-001-telemetry/expected.jsonl"));
    assert_eq!(items_without(items, &["window_start"]), want);
}

#[test]
fn collect_windows_of_one_key_each_get_their_own_item() {
    let s = services();
    let table = unique("collect");
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples/seed-004-collect");
    let text = std::fs::read_to_string(example.join("collect.toml")).unwrap();
    let file_run = run(&manifest_text(&example, &text)).unwrap();
    let sink_at = text.find("[sink]").unwrap();
    let text = format!("{}{}", &text[..sink_at], dynamodb_sink(&table, "key")).replace("\"../../", &format!("\"{}/", root().display()));
    let text = text.replace("path = \"collect-input.jsonl\"", &format!("path = \"{}\"", example.join("collect-input.jsonl").display()));
    let log = run_to_end(&write_manifest(dir.path(), &text));
    let items = scan(&s.dynamodb, &table);
    assert!(file_run.lines.len() > 1, "the seed has several windows of one key");
    assert_eq!(items.len(), file_run.lines.len(), "one item per window (key, window id):\n{log}\n{items:#?}");
    let mut ids: Vec<String> = items.iter().map(|i| i["window_start"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "the sort key holds each window's id: {ids:?}");
}

#[test]
fn an_item_dynamodb_refuses_is_dead_lettered_alone_and_its_batch_is_written() {
    let s = services();
    let table = unique("refused");
    let dir = tempfile::tempdir().unwrap();
    // 30 keys in one 10 s window: one BatchWriteItem of 25 and one of 5;
    // DynamoDB refuses the item of key k7 (a number over its range).
    let input: String = (0..30).map(|i| format!("{{\"key\":\"k{i}\",\"value\":{i},\"time\":\"2022-01-01T00:00:01Z\"}}\n")).collect();
    std::fs::write(dir.path().join("input.jsonl"), input).unwrap();
    let sink = dynamodb_sink(&table, "key");
    let manifest = weir_tests::write_sums_manifest(
        dir.path(),
        "faulty",
        "kind = \"jsonl\"\npath = \"input.jsonl\"",
        &format!("[stages.format]\nconfig = {{ mode = \"overflow\", when = \"k7\" }}\n[dead_letter]\nkind = \"file\"\npath = \"dead.jsonl\"\n"),
    );
    let text = std::fs::read_to_string(&manifest).unwrap().replace("[sink]\nkind = \"stdout\"\n", &sink);
    std::fs::write(&manifest, text).unwrap();
    let log = run_to_end(manifest.to_str().unwrap());
    let items = scan(&s.dynamodb, &table);
    assert_eq!(items.len(), 29, "every item but the refused one:\n{log}");
    assert!(items.iter().all(|i| i["key"] != "k7"));
    // The writer thread timed each item it wrote from its window's close.
    assert!(log.contains("window close → item written: 29 windows, p50 "), "close → item latency of the 29 written items:\n{log}");
    assert!(log.contains("29 windows written"), "the refused window is not counted as written:\n{log}");
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    let letters: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(letters[0]["key"], "k7");
    assert_eq!(letters[0]["stage"], "sink");
    assert!(letters[0]["reason"].as_str().unwrap().contains("DynamoDB refused the item"), "{dead}");
    let value: serde_json::Value = serde_json::from_str(letters[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["object"]["key"], "k7", "the formatted object is kept: {value}");
    assert!(!value["acc_hex"].as_str().unwrap().is_empty(), "{value}");
}

#[test]
fn a_missing_table_stops_the_pipeline_with_a_clear_message() {
    services();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.jsonl"), "{\"key\":\"a\",\"value\":1,\"time\":\"2022-01-01T00:00:01Z\"}\n").unwrap();
    let sink = dynamodb_sink(&unique("absent"), "key").replace("create_table = true", "create_table = false");
    let manifest = weir_tests::write_sums_manifest(dir.path(), "faulty", "kind = \"jsonl\"\npath = \"input.jsonl\"", "");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("[sink]\nkind = \"stdout\"\n", &sink);
    std::fs::write(&manifest, text).unwrap();
    let out = weir(&["run", manifest.to_str().unwrap()], RUN_LIMIT);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("the table does not exist"), "{log}");
}

#[test]
fn seed_002_windows_to_an_output_topic() {
    let s = services();
    let (input, output) = (unique("seed002-in"), unique("seed002-out"));
    produce(&input, 1, &root().join("examples/seed-002-min-max-mean/input.jsonl"), Some("sensor"), 0);
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"{source}
[stages]
plugin = "{plugin}"
config = {{ value_field = "value" }}
[stages.deserialize]
builtin = "json"
[stages.key]
field = "sensor"
[clock]
kind = "event"
time_field = "ts"
wait_for_system_duration = "1s"
[window]
kind = "tumbling"
length = "10s"
align_to = "1970-01-01T00:00:00Z"
[sink]
kind = "kafka"
brokers = "${{WEIR_KAFKA_BROKERS}}"
topic = "{output}"
"#,
        source = kafka_source(&input, &unique("g")),
        plugin = plugin("window_stats").display(),
    );
    let stderr = run_to_end(&write_manifest(dir.path(), &manifest));
    assert!(stderr.contains("2 late"), "the two late readings are dead letters: {stderr}");
    let want = expected("examples/seed-002-min-max-mean/expected.jsonl");
    let got = consume(&s.brokers, &output, want.len(), Duration::from_secs(30));
    assert_eq!(got.iter().map(|m| m.value.clone()).collect::<BTreeSet<_>>(), want.iter().cloned().collect::<BTreeSet<_>>());
    for m in &got {
        let v: Value = serde_json::from_str(&m.value).unwrap();
        assert_eq!(m.key.as_deref(), v["key"].as_str(), "the message key is the window key");
    }
}

#[test]
fn bad_records_go_to_the_dead_letter_topic_with_reasons() {
    let s = services();
    let (input, dead) = (unique("bad-in"), unique("bad-dead"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("input.jsonl");
    std::fs::write(
        &data,
        r#"{"id":"s1","value":1.0,"time":"2024-01-01T00:00:01Z"}
this is not json
{"id":"s1","time":"2024-01-01T00:00:02Z"}
{"id":"s1","value":3.0,"time":"2024-01-01T00:00:03Z"}
{"id":"s2","value":4.0,"time":"yesterday"}
"#,
    )
    .unwrap();
    produce(&input, 1, &data, None, 0);
    let out = dir.path().join("out.jsonl");
    let manifest = format!(
        r#"{source}
[stages]
plugin = "{plugin}"
[clock]
kind = "event"
wait_for_system_duration = "0s"
[window]
kind = "tumbling"
length = "10s"
align_to = "2024-01-01T00:00:00Z"
[sink]
kind = "file"
path = "{out}"
[dead_letter]
kind = "kafka"
brokers = "${{WEIR_KAFKA_BROKERS}}"
topic = "{dead}"
"#,
        source = kafka_source(&input, &unique("g")),
        plugin = plugin("sensor_average").display(),
        out = out.display(),
    );
    run_to_end(&write_manifest(dir.path(), &manifest));
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.trim(), r#"{"id":"s1","average":2.0,"num_events":2,"from":1.0,"to":3.0}"#);
    let letters = consume(&s.brokers, &dead, 3, Duration::from_secs(30));
    assert_eq!(letters.len(), 3, "{letters:?}");
    let by_offset: BTreeMap<String, _> = letters.iter().map(|l| (l.headers["weir.offset"].clone(), l)).collect();
    assert_eq!(by_offset.keys().cloned().collect::<Vec<_>>(), ["1", "2", "4"]);
    assert_eq!(by_offset["1"].value, "this is not json");
    assert!(by_offset["1"].headers["weir.reason"].contains("value is not the expected JSON"), "{:?}", by_offset["1"]);
    assert!(by_offset["2"].headers["weir.reason"].contains("missing field `value`"), "{:?}", by_offset["2"]);
    assert!(by_offset["4"].headers["weir.reason"].contains("field `time`"), "{:?}", by_offset["4"]);
    // Each letter keeps its record's own time: here, the event time.
    let sent = consume(&s.brokers, &input, 5, Duration::from_secs(30));
    assert_eq!(sent.len(), 5, "{sent:?}");
    for (offset, letter) in &by_offset {
        let original = &sent[offset.parse::<usize>().unwrap()];
        assert!(original.timestamp.is_some(), "{original:?}");
        assert_eq!(letter.timestamp, original.timestamp, "offset {offset}: {letter:?}");
        assert_eq!(letter.value, original.value, "offset {offset}");
    }
    for l in &letters {
        assert_eq!(l.headers["weir.kind"], "failed");
        assert_eq!(l.headers["weir.stage"], "deserialize");
        assert_eq!(l.headers["weir.source"], input);
        assert_eq!(l.headers["weir.partition"], "0");
    }
}

// The dead letters of a Kafka run, in a file, sent back to a topic with
// `weir produce --dead-letters`: each message as the pipeline read it,
// bytes that are not UTF-8 included, with its timestamp.
#[test]
fn dead_letters_in_a_file_go_back_to_a_topic_as_they_were_read() {
    let s = services();
    let (input, again) = (unique("dl-in"), unique("dl-again"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("input.jsonl");
    let mut lines = b"{\"id\":\"s1\",\"value\":1.0,\"time\":\"2024-01-01T00:00:01Z\"}\nthis is not json\n".to_vec();
    lines.extend_from_slice(b"{\"id\":\"caf\xe9\",\"value\":\xff}\n{\"id\":\"s1\",\"value\":3.0,\"time\":\"2024-01-01T00:00:03Z\"}\n");
    std::fs::write(&data, &lines).unwrap();
    produce(&input, 1, &data, None, 0);
    let manifest = format!(
        "{source}\n[stages]\nplugin = \"{plugin}\"\n[clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n[window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2024-01-01T00:00:00Z\"\n[sink]\nkind = \"file\"\npath = \"{out}\"\n[dead_letter]\nkind = \"file\"\npath = \"{dead}\"\n",
        source = kafka_source(&input, &unique("g")),
        plugin = plugin("sensor_average").display(),
        out = dir.path().join("out.jsonl").display(),
        dead = dir.path().join("dead.jsonl").display(),
    );
    run_to_end(&write_manifest(dir.path(), &manifest));
    let dead = dir.path().join("dead.jsonl");
    let out = weir_tests::services::weir(&["produce", "--brokers", &s.brokers, "--topic", &again, "--dead-letters", dead.to_str().unwrap()], Duration::from_secs(120));
    assert!(out.status.success(), "produce --dead-letters failed: {}", String::from_utf8_lossy(&out.stderr));
    let sent = consume(&s.brokers, &input, 4, Duration::from_secs(30));
    let resent = consume(&s.brokers, &again, 2, Duration::from_secs(30));
    assert_eq!((sent.len(), resent.len()), (4, 2), "{resent:?}");
    // Offsets 1 and 2 failed, in that order.
    for (original, back) in sent[1..3].iter().zip(&resent) {
        assert_eq!(back.payload, original.payload);
        assert!(back.timestamp.is_some() && back.timestamp == original.timestamp, "{back:?} against {original:?}");
    }
    assert!(std::str::from_utf8(&resent[1].payload).is_err(), "the bytes that are not UTF-8 went back as they were");
}

#[test]
fn dead_letters_in_a_topic_go_back_to_a_topic_as_they_were_read() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let s = services();
    let (input, dead, again) = (unique("dlt-in"), unique("dlt-dead"), unique("dlt-again"));
    // Each message with a key, a header and a time of its own.
    weir::sink::kafka::ensure_topic(&s.brokers, &input, 1).unwrap();
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &s.brokers).create().unwrap();
    let values: [&[u8]; 4] = [b"{\"id\":\"s1\",\"value\":1.0,\"time\":\"2024-01-01T00:00:01Z\"}", b"this is not json", b"{\"id\":\"caf\xe9\",\"value\":\xff}", b"{\"id\":\"s1\",\"value\":3.0,\"time\":\"2024-01-01T00:00:03Z\"}"];
    for (i, value) in values.iter().enumerate() {
        let (key, trace) = (format!("k{i}"), format!("t{i}"));
        let headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(&trace) });
        let record = BaseRecord::to(&input).payload(*value).key(&key).headers(headers).timestamp(1_704_067_200_000 + i as i64);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "{source}\n[stages]\nplugin = \"{plugin}\"\n[clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n[window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2024-01-01T00:00:00Z\"\n[sink]\nkind = \"file\"\npath = \"{out}\"\n[dead_letter]\nkind = \"kafka\"\nbrokers = \"${{WEIR_KAFKA_BROKERS}}\"\ntopic = \"{dead}\"\n",
        source = kafka_source(&input, &unique("g")),
        plugin = plugin("sensor_average").display(),
        out = dir.path().join("out.jsonl").display(),
    );
    let log = run_to_end(&write_manifest(dir.path(), &manifest));
    // Reaching a partition's end is how the run knows it caught up: not
    // an error in its log.
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(consume(&s.brokers, &dead, 2, Duration::from_secs(30)).len(), 2, "two letters in {dead}");
    let resend = |from: &str, to: &str| weir(&["produce", "--brokers", &s.brokers, "--topic", to, "--dead-letter-topic", from], Duration::from_secs(120));
    // A topic that is not a dead-letter topic is refused, naming the
    // message, and nothing is sent.
    let refused = resend(&input, &again);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains(&format!("{input}[0] offset 0")) && err.contains("weir.kind"), "{err}");
    let out = resend(&dead, &again);
    assert!(out.status.success(), "produce --dead-letter-topic failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 records and 0 windows read"), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = consume(&s.brokers, &input, 4, Duration::from_secs(30));
    let resent = consume(&s.brokers, &again, 2, Duration::from_secs(30));
    assert_eq!((sent.len(), resent.len()), (4, 2), "{resent:?}");
    // Offsets 1 and 2 failed, in that order; they come back whole, with
    // their own header and none of the dead-letter output's.
    for (original, back) in sent[1..3].iter().zip(&resent) {
        assert_eq!((&back.payload, &back.key, back.timestamp), (&original.payload, &original.key, original.timestamp));
        assert_eq!(back.headers, original.headers, "{back:?}");
    }
    assert_eq!(resent[1].headers["trace"], "t2");
    // Sending a dead-letter topic's records into itself is refused.
    let looped = resend(&dead, &dead);
    assert!(!looped.status.success() && String::from_utf8_lossy(&looped.stderr).contains("not back into it"), "{}", String::from_utf8_lossy(&looped.stderr));
}

fn restart_after(sig: &str) {
    let s = services();
    let (topic, table, group) = (unique(&format!("restart-{sig}")), unique("restart"), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let data = restart_data(dir.path(), 4000, 5);
    let want = expected_for(dir.path(), &data);
    assert_eq!(want.len(), 40, "5 sensors x 8 one-second windows");

    let manifest = write_manifest(dir.path(), &restart_pipeline(&kafka_source(&topic, &group), &dynamodb_sink(&table, "id"), &dir.path().join("checkpoints")));
    // The producer streams for ~8 s; weir is stopped in the middle of it.
    let producer = produce_in_background(&topic, Some(2), &data, 500);
    // Stop weir in the middle: once some windows are in DynamoDB, well
    // before the producer is done.
    let first = Running::start(&["run", &manifest]);
    let started = Instant::now();
    while scan(&s.dynamodb, &table).len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "no window written within 60 s:\n{}", first.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill").args([&format!("-{sig}"), &first.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let (clean, first_err) = first.finish(RUN_LIMIT);
    if sig == "TERM" {
        assert!(clean, "SIGTERM is a clean stop:\n{first_err}");
        assert!(first_err.contains("writing a last checkpoint"), "{first_err}");
    }
    let written_before = scan(&s.dynamodb, &table).len();
    assert!(written_before < want.len(), "stopped mid-stream: {written_before} of {} windows written\n{first_err}", want.len());

    let second = run_to_end(&manifest);
    producer.join().unwrap();
    // The producer may still have been sending when the idle exit came; a
    // third run picks up whatever is left.
    let third = run_to_end(&manifest);
    let items = scan(&s.dynamodb, &table);
    assert_eq!(items.len(), want.len(), "every window once\nsecond run:\n{second}\nthird run:\n{third}");
    assert_eq!(items_without(items, &["window_start"]), want, "no window lost or partial");
}

#[test]
fn restart_after_sigterm_loses_nothing() {
    restart_after("TERM");
}

#[test]
fn restart_after_sigkill_loses_nothing() {
    restart_after("KILL");
}

#[test]
fn two_processes_in_one_group_split_the_partitions() {
    let s = services();
    let (topic, table, group) = (unique("pair"), unique("pair"), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let data = restart_data(dir.path(), 3000, 8);
    let want = expected_for(dir.path(), &data);
    // Create the 4-partition topic empty, start both members, then stream.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    produce(&topic, 4, &empty, None, 0);
    let source = kafka_source(&topic, &group).replace("exit_when_idle = \"4s\"", "exit_when_idle = \"12s\"");
    let manifest = write_manifest(dir.path(), &restart_pipeline(&source, &dynamodb_sink(&table, "id"), &dir.path().join("checkpoints")));
    let mut a = Running::start(&["run", &manifest]);
    let mut b = Running::start(&["run", &manifest]);
    // Both members in the group, each with its share, before data flows.
    let assigned = |log: &str| log.contains("partitions assigned");
    a.wait_until("an assignment", Duration::from_secs(60), assigned);
    b.wait_until("an assignment", Duration::from_secs(60), assigned);
    std::thread::sleep(Duration::from_secs(3));
    produce(&topic, 4, &data, Some("id"), 1000);
    let ((a_ok, a_err), (b_ok, b_err)) = (a.finish(RUN_LIMIT), b.finish(RUN_LIMIT));
    assert!(a_ok && b_ok, "A:\n{a_err}\nB:\n{b_err}");
    let windows = |log: &str| -> u64 { log.lines().rev().find_map(|l| l.split(" windows written").next()?.rsplit(", ").next()?.parse().ok()).unwrap_or(0) };
    assert!(windows(&a_err) > 0 && windows(&b_err) > 0, "both members wrote windows:\nA:\n{a_err}\nB:\n{b_err}");
    assert!(!a_err.contains("more than one partition") && !b_err.contains("more than one partition"));
    let items = scan(&s.dynamodb, &table);
    assert_eq!(items.len(), want.len());
    assert_eq!(items_without(items, &["window_start"]), want);
}

#[test]
fn a_key_in_two_partitions_is_reported_even_when_two_workers_own_them() {
    let (topic, table) = (unique("unkeyed"), unique("unkeyed"));
    let dir = tempfile::tempdir().unwrap();
    let data = restart_data(dir.path(), 400, 2);
    // No message key: librdkafka spreads the messages over the partitions,
    // so each sensor turns up in both. With two workers each owns one
    // partition: only the workers' shared key homes can see it.
    produce(&topic, 2, &data, None, 0);
    let manifest = write_manifest(dir.path(), &restart_pipeline(&kafka_source(&topic, &unique("g")), &dynamodb_sink(&table, "id"), &dir.path().join("c")));
    let out = weir(&["run", "--workers", "2", &manifest], RUN_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir run failed:\n{stderr}");
    assert!(stderr.contains("2 workers, each owning some of the partitions"), "{stderr}");
    assert!(stderr.contains("key seen in more than one partition"), "{stderr}");
}

#[test]
fn a_broker_that_is_not_there_yet_is_waited_for() {
    let tansu = std::env::var("WEIR_TANSU_BIN").expect("WEIR_TANSU_BIN is set by scripts/services.sh start (run via scripts/test.sh)");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let brokers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let manifest = format!(
        r#"
[source]
kind = "kafka"
brokers = "{brokers}"
topics = ["late-broker"]
group_id = "g"
exit_when_idle = "15s"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "1000", "reconnect.backoff.max.ms" = "1000", "topic.metadata.refresh.interval.ms" = "1000" }}
[stages]
plugin = "{plugin}"
[clock]
kind = "event"
wait_for_system_duration = "0s"
[window]
kind = "tumbling"
length = "10s"
align_to = "2024-01-01T00:00:00Z"
[sink]
kind = "file"
path = "{out}"
"#,
        plugin = plugin("sensor_average").display(),
        out = out.display(),
    );
    let path = write_manifest(dir.path(), &manifest);
    let mut weir_run = Running::start(&["run", &path]);
    // Nothing listens yet: weir says so and keeps trying.
    weir_run.wait_until("a log line about the missing broker", Duration::from_secs(30), |log| log.contains("Connection refused") || log.contains("retrying"));
    let mut broker = std::process::Command::new(&tansu)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://{brokers}"),
            "--advertised-listener-url",
            &format!("tcp://{brokers}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu starts");
    let data = dir.path().join("in.jsonl");
    std::fs::write(&data, "{\"id\":\"s1\",\"value\":1.0,\"time\":\"2024-01-01T00:00:01Z\"}\n{\"id\":\"s1\",\"value\":3.0,\"time\":\"2024-01-01T00:00:02Z\"}\n")
        .unwrap();
    let started = Instant::now();
    loop {
        let out = weir(&["produce", "--brokers", &brokers, "--topic", "late-broker", "--replay", data.to_str().unwrap()], RUN_LIMIT);
        if out.status.success() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "cannot produce: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, log) = weir_run.finish(RUN_LIMIT);
    let _ = broker.kill();
    let _ = broker.wait();
    assert!(ok, "weir did not crash while the broker was away:\n{log}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.trim(), r#"{"id":"s1","average":2.0,"num_events":2,"from":1.0,"to":2.0}"#, "{log}");
}

// Seed 003: mock sensors write straight into DynamoDB, and `weir query
// --stats` answers "per sensor count, mean, min, max over a time range"
// with a Query per named sensor, or a Scan (with progress) when asked.
#[test]
fn seed_003_sensors_into_dynamodb_and_per_sensor_stats_by_query_and_scan() {
    let s = services();
    let table = unique("seed003");
    let produced = weir(&["produce", "--dynamodb-table", &table, "--endpoint", &s.dynamodb, "--create-table", "--sensors", "4", "--count", "400", "--seed", "3"], Duration::from_secs(120));
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    // The truth, read back with a plain scan: per sensor, (time, value).
    let items = scan(&s.dynamodb, &table);
    assert_eq!(items.len(), 400, "every reading is an item");
    let mut truth: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for item in &items {
        let (Value::String(id), Some(t), Some(v)) = (&item["SensorId"], item["CurrentTime"].as_i64(), item["Temperature"].as_f64()) else { panic!("item shape: {item:?}") };
        truth.entry(id.clone()).or_default().push((t, v));
    }
    assert_eq!(truth.len(), 4);
    // A range that cuts through the readings: the middle half of the times.
    let mut times: Vec<i64> = items.iter().map(|i| i["CurrentTime"].as_i64().unwrap()).collect();
    times.sort();
    let (from, to) = (times[100], times[300]);
    let rfc = |ms: i64| weir::Timestamp(ms * 1000).to_string();
    let expected = |keys: &[&str]| -> Vec<(String, u64, f64, f64, f64)> {
        keys.iter()
            .filter_map(|k| {
                let v: Vec<f64> = truth[*k].iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, v)| *v).collect();
                (!v.is_empty()).then(|| (k.to_string(), v.len() as u64, v.iter().sum::<f64>() / v.len() as f64, v.iter().cloned().fold(f64::MAX, f64::min), v.iter().cloned().fold(f64::MIN, f64::max)))
            })
            .collect()
    };
    let parse = |out: &std::process::Output| -> Vec<(String, u64, f64, f64, f64)> {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["key"].as_str().unwrap().to_owned(), v["count"].as_u64().unwrap(), v["mean"].as_f64().unwrap(), v["min"].as_f64().unwrap(), v["max"].as_f64().unwrap())
            })
            .collect()
    };
    let same = |got: Vec<(String, u64, f64, f64, f64)>, want: Vec<(String, u64, f64, f64, f64)>| {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.0 == w.0 && g.1 == w.1 && g.3 == w.3 && g.4 == w.4 && (g.2 - w.2).abs() < 1e-9, "{g:?} vs {w:?}");
        }
    };
    let common = ["query", "--table", &table, "--stats", "--endpoint", &s.dynamodb, "--partition-key", "SensorId", "--sort-key", "CurrentTime", "--from"];
    let (from_text, to_text) = (rfc(from), rfc(to));
    let by_key = weir(&[&common[..], &[&from_text, "--to", &to_text, "--key", "sensor-1", "--key", "sensor-3"]].concat(), Duration::from_secs(60));
    same(parse(&by_key), expected(&["sensor-1", "sensor-3"]));
    assert!(String::from_utf8_lossy(&by_key.stderr).contains(&format!("query {table}: ")), "{}", String::from_utf8_lossy(&by_key.stderr));
    let scanned = weir(&[&common[..], &[&from_text, "--to", &to_text, "--scan"]].concat(), Duration::from_secs(60));
    same(parse(&scanned), expected(&["sensor-1", "sensor-2", "sensor-3", "sensor-4"]));
    let log = String::from_utf8_lossy(&scanned.stderr);
    assert!(log.contains(&format!("scan {table}: 400 items read, 200 in range")), "{log}");
}
