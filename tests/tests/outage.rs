//! DynamoDB going away mid-run: the pipeline stalls on its sink (offsets
//! wait with it), resumes when DynamoDB is back, and loses nothing.

use std::time::{Duration, Instant};

use weir_tests::pipelines::*;
use weir_tests::services::{PersistentDynamo, Running, scan, services, unique, weir};

#[test]
fn dynamodb_down_for_30_s_mid_run_loses_nothing() {
    let s = services();
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
    let producer = {
        let (brokers, topic, data) = (s.brokers.clone(), topic.clone(), data.clone());
        std::thread::spawn(move || {
            let args = [
                "produce",
                "--brokers",
                &brokers,
                "--topic",
                &topic,
                "--partitions",
                "2",
                "--replay",
                data.to_str().unwrap(),
                "--key-field",
                "id",
                "--rate",
                "250",
            ];
            let out = weir(&args, Duration::from_secs(300));
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        })
    };
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
