//! DynamoDB going away mid-run: the pipeline stalls on its sink (offsets
//! wait with it), resumes when DynamoDB is back, and loses nothing.

use std::time::{Duration, Instant};

use weir_tests::pipelines::*;
use weir_tests::services::{PersistentDynamo, Running, scan, unique};

// Each test here stops a server of its own; run them one at a time so
// neither starves the other's timing on a 2-core machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn dynamodb_down_for_30_s_mid_run_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (topic, table, group) = (unique("outage"), unique("outage"), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("dynamodb");
    std::fs::create_dir_all(&db_dir).unwrap();
    let mut dynamo = PersistentDynamo::start(&db_dir);
    let data = restart_data(dir.path(), 10_000, 5);
    let want = expected_for(dir.path(), &data);
    // A member that waits for its sink is not thrown out of the group for it
    // within a 30 s outage (librdkafka's default is 300 s).
    let source = kafka_source(&topic, &group).replace("\"max.poll.interval.ms\" = \"10000\"", "\"max.poll.interval.ms\" = \"120000\"");
    let sink = dynamodb_sink(&table, "id").replace("${WEIR_DYNAMODB_ENDPOINT}", &dynamo.endpoint());
    let manifest = write_manifest(dir.path(), &restart_pipeline(&source, &sink, &dir.path().join("checkpoints")));
    let producer = produce_in_background(&topic, Some(2), &data, 250);
    let member = Running::start(&["run", &manifest]);
    let started = Instant::now();
    while scan(&dynamo.endpoint(), &table).len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "no window written within 60 s:\n{}", member.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = scan(&dynamo.endpoint(), &table).len();
    dynamo.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(30));
    dynamo.resume();
    let outage = down.elapsed();
    producer.join().unwrap();
    let (ok, log) = member.finish(Duration::from_secs(300));
    assert!(ok, "the pipeline stopped instead of waiting for DynamoDB:\n{log}");
    assert!(log.contains("retrying (the pipeline waits)"), "the outage was not seen:\n{log}");
    let items = scan(&dynamo.endpoint(), &table);
    let got = items_without(items, &["window_start"]);
    assert_eq!(got.len(), want.len(), "{log}");
    assert_eq!(got, want, "no window lost or partial");
    println!("DynamoDB Local down {outage:.1?} after {before} of {} windows were written: all windows exact after it came back", want.len());
}

#[test]
fn the_broker_restarted_mid_run_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (topic, table, group) = (unique("brokerdown"), unique("brokerdown"), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let mut broker = weir_tests::services::PersistentBroker::start(dir.path());
    let data = restart_data(dir.path(), 6000, 5);
    let want = expected_for(dir.path(), &data);
    // Polls fail while the broker is away: that is not the end of input.
    let source =
        kafka_source(&topic, &group).replace("${WEIR_KAFKA_BROKERS}", &broker.brokers()).replace("exit_when_idle = \"4s\"", "exit_when_idle = \"30s\"");
    // While the broker is away no record arrives, and the watermark moves on
    // with system time (Bytewax's semantics: weir cannot tell a dead broker
    // from a quiet topic), so the wait must cover the outage, as in the
    // issue's own scenario.
    let text = restart_pipeline(&source, &dynamodb_sink(&table, "id"), &dir.path().join("checkpoints"));
    let manifest = write_manifest(dir.path(), &text.replace("wait_for_system_duration = \"3s\"", "wait_for_system_duration = \"60s\""));
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    produce_to(&broker.brokers(), &topic, Some(2), &empty, None, 0);
    let mut member = Running::start(&["run", &manifest]);
    let dynamodb = weir_tests::services::services().dynamodb;
    // The first half, then the broker goes away for 10 s, then the rest.
    let half = dir.path().join("first-half.jsonl");
    let rest = dir.path().join("second-half.jsonl");
    let text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&half, lines[..3000].join("\n") + "\n").unwrap();
    std::fs::write(&rest, lines[3000..].join("\n") + "\n").unwrap();
    let brokers = broker.brokers();
    let produce = |file: &std::path::Path| produce_to(&brokers, &topic, None, file, Some("id"), 1000);
    produce(&half);
    // Every window is still open (the wait is 60 s): stop the broker once
    // the first half has been read.
    let read = |log: &str| log.lines().filter_map(|l| l.split(" records (").next()?.rsplit(' ').next()?.parse::<u64>().ok()).max().unwrap_or(0);
    member.wait_until("the first half read", Duration::from_secs(60), |log| read(log) >= 3000);
    broker.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    broker.resume();
    let outage = down.elapsed();
    produce(&rest);
    let (ok, log) = member.finish(Duration::from_secs(300));
    assert!(ok, "{log}");
    let got = items_without(scan(&dynamodb, &table), &["window_start"]);
    assert_eq!(got.len(), want.len(), "{log}");
    assert_eq!(got, want, "no window lost or partial");
    println!("the broker (tansu, sqlite storage) down {outage:.1?} mid-run: all {} windows exact", want.len());
}
