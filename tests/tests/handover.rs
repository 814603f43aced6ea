//! Partitions moving between members while data flows: members join, are
//! stopped with SIGTERM or killed with SIGKILL, and new ones take over,
//! against the real broker (tansu) and DynamoDB Local. Every window must
//! come out exactly as a plain file run of the same data computes it:
//! nothing lost, nothing counted twice. Members run one worker thread or
//! two (each owning some of the member's partitions).

use std::time::{Duration, Instant};

use weir_tests::pipelines::*;
use weir_tests::services::{Running, scan, services, unique};

/// One churn scenario.
struct Churn {
    records: usize,
    sensors: usize,
    rate: u32,
    /// Members stopped while the producer runs, oldest first.
    stops: usize,
    every: Duration,
    /// Every other stop is a SIGTERM instead of a SIGKILL.
    sigterm_too: bool,
    /// Checkpoints in a DynamoDB table instead of a shared folder.
    dynamodb_checkpoints: bool,
    /// Worker threads per member (each owning some of its partitions).
    workers: usize,
}

fn churn(name: &str, c: Churn) {
    let s = services();
    let (topic, table, group) = (unique(name), unique(name), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let data = restart_data(dir.path(), c.records, c.sensors);
    let want = expected_for(dir.path(), &data);
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    produce(&topic, 4, &empty, None, 0);
    let source = kafka_source(&topic, &group).replace("exit_when_idle = \"4s\"", "exit_when_idle = \"600s\"");
    let checkpoints = dir.path().join("checkpoints");
    let mut text = restart_pipeline(&source, &dynamodb_sink(&table, "id"), &checkpoints);
    if c.dynamodb_checkpoints {
        let folder = format!("dir = \"{}\"", checkpoints.display());
        let table = format!(
            "kind = \"dynamodb\"\ntable = \"{}\"\nendpoint = \"${{WEIR_DYNAMODB_ENDPOINT}}\"\nregion = \"us-east-1\"\ncreate_table = true",
            unique("ckpt")
        );
        assert!(text.contains(&folder));
        text = text.replace(&folder, &table);
    }
    let manifest = write_manifest(dir.path(), &text);
    // The member that drains what is left stops once it has been idle.
    let drain_dir = dir.path().join("drain");
    std::fs::create_dir_all(&drain_dir).unwrap();
    let drain_manifest = write_manifest(&drain_dir, &text.replace("exit_when_idle = \"600s\"", "exit_when_idle = \"30s\""));
    let started = Instant::now();
    let workers = c.workers.to_string();
    let member = || Running::start(&["run", "--workers", &workers, &manifest]);

    let mut members = vec![member()];
    members[0].wait_until("an assignment", Duration::from_secs(60), |log| log.contains("partitions assigned"));
    let producer = produce_in_background(&topic, None, &data, c.rate);
    // A second member joins while data flows.
    std::thread::sleep(Duration::from_secs(2));
    members.push(member());
    let mut logs = Vec::new();
    let (mut terms, mut kills) = (0, 0);
    // tansu 0.6 can leave a group stuck when a member that is still joining
    // leaves while the group waits out a killed one: stop members only once
    // every member has had an assignment.
    let settle = |members: &mut Vec<Running>| {
        let holding = |log: &str| log.rfind("partitions assigned") > log.rfind("partitions revoked");
        for _ in 0..2 {
            for m in members.iter_mut() {
                m.wait_until("an assignment after its last revoke", Duration::from_secs(90), holding);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    for i in 0..c.stops {
        std::thread::sleep(c.every);
        settle(&mut members);
        let victim = members.remove(0);
        let signal = if c.sigterm_too && i % 2 == 1 { "TERM" } else { "KILL" };
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &victim.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let (clean, log) = victim.finish(Duration::from_secs(60));
        if signal == "TERM" {
            assert!(clean, "SIGTERM is a clean stop:\n{log}");
            terms += 1;
        } else {
            kills += 1;
        }
        logs.push(log);
        members.push(member());
    }
    producer.join().unwrap();
    // Let the members catch up, stop them, and let one drain what is left
    // and close every window.
    std::thread::sleep(Duration::from_secs(3));
    settle(&mut members);
    for m in &members {
        let _ = std::process::Command::new("kill").args(["-TERM", &m.child.id().to_string()]).status();
    }
    for m in members {
        let (clean, log) = m.finish(Duration::from_secs(60));
        assert!(clean, "{log}");
        logs.push(log);
    }
    let drain = Running::start(&["run", "--workers", &workers, &drain_manifest]);
    let (drained, drain) = drain.finish(Duration::from_secs(180));
    let several = format!("{workers} workers, each owning some of the partitions");
    assert_eq!(
        logs.iter().chain([&drain]).filter(|l| l.contains(&several)).count(),
        if c.workers > 1 { logs.len() + 1 } else { 0 },
        "members say how many workers share their partitions"
    );
    let all_logs = || logs.iter().enumerate().map(|(i, l)| format!("--- member {i}:\n{}", tail(l, 40))).collect::<Vec<_>>().join("\n");
    assert!(drained, "the drain failed:\n{drain}\n{}", all_logs());
    assert_eq!(checkpoints.exists(), !c.dynamodb_checkpoints, "checkpoints went where the manifest said");
    let items = scan(&s.dynamodb, &table);
    let got = items_without(items, &["window_start"]);
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    // When windows are wrong, read the topic again with one fresh member:
    // if it finds the same windows wrong, the broker does not hold the
    // records (the producer or the broker lost them), not the handover.
    let recount = || {
        if want.difference(&got).next().is_none() {
            return String::new();
        }
        let (group, table) = (unique("recount"), unique("recount"));
        let source = kafka_source(&topic, &group).replace("exit_when_idle = \"4s\"", "exit_when_idle = \"20s\"");
        let recount_dir = dir.path().join("recount");
        std::fs::create_dir_all(&recount_dir).unwrap();
        let text = restart_pipeline(&source, &dynamodb_sink(&table, "id"), &recount_dir.join("checkpoints"));
        run_to_end(&write_manifest(&recount_dir, &text));
        let again = items_without(scan(&s.dynamodb, &table), &["window_start"]);
        let wrong_again: Vec<_> = want.difference(&again).collect();
        let same = want.difference(&got).filter(|w| wrong_again.contains(w)).count();
        format!("one fresh member reading the whole topic afterwards finds {} windows wrong, {same} of them the same ones: {wrong_again:#?}", wrong_again.len())
    };
    // Late or failed records are dead-lettered (to the log here), not lost:
    // name them when windows come out short.
    let dead: Vec<&str> = logs.iter().chain([&drain]).flat_map(|l| l.lines()).filter(|l| l.contains("dead letter:")).collect();
    let fenced = logs.iter().map(|l| l.matches("refused:").count()).sum::<usize>();
    let dropped: usize = logs.iter().filter(|l| l.contains("were dropped (their new owner reads them)")).count();
    // A plain topic has no offset gaps: a gap is the broker serving a later
    // batch before an earlier one; weir reads it again (see driver::kafka).
    let gaps: Vec<&str> = logs
        .iter()
        .chain([&drain])
        .flat_map(|l| l.lines())
        .filter(|l| l.contains("the broker returned offset") || l.contains("came on the second read") || l.contains("are not in the topic"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && dead.is_empty(),
        "{} of {} windows wrong after {kills} SIGKILLs and {terms} SIGTERMs\nmissing or different: {missing:#?}\nnot expected: {extra:#?}\noffset gaps the broker left: {gaps:#?}\n{} dead letters: {:#?}\n{}\ndrain:\n{drain}\n{}",
        want.difference(&got).count(),
        want.len(),
        dead.len(),
        &dead[..dead.len().min(5)],
        recount(),
        all_logs()
    );
    println!(
        "{name}: {} records over 4 partitions, {} workers a member, {kills} SIGKILLs and {terms} SIGTERMs of members while data flowed: all {} windows exact \
         ({fenced} fenced checkpoint writes, {dropped} members dropped records of revoked partitions, {} log lines about offset gaps) in {:.0?}",
        c.records,
        c.workers,
        want.len(),
        gaps.len(),
        started.elapsed()
    );
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn a_rebalance_while_data_flows_loses_and_doubles_nothing() {
    churn(
        "rebalance",
        Churn { records: 40_000, sensors: 8, rate: 4000, stops: 3, every: Duration::from_secs(3), sigterm_too: true, dynamodb_checkpoints: false, workers: 2 },
    );
}

/// The load: 25,000 msg/s. One run of an earlier version at
/// 15,000 msg/s (a fresh clone under CI load) lost 16 records of one
/// partition, never reproduced since (10 runs at 15,000, 4 at 25,000 under
/// load); weir now checks every partition's offsets for gaps and reads a
/// gap again, and this test prints any gap lines it finds.
#[test]
fn a_rebalance_at_25000_msgs_while_data_flows_loses_nothing() {
    churn(
        "rebalance25k",
        Churn {
            records: 300_000,
            sensors: 8,
            rate: 25_000,
            stops: 3,
            every: Duration::from_secs(3),
            sigterm_too: true,
            dynamodb_checkpoints: false,
            workers: 1,
        },
    );
}

#[test]
fn a_rebalance_with_checkpoints_in_dynamodb_loses_nothing() {
    churn(
        "ddbckpt",
        Churn { records: 8000, sensors: 8, rate: 1000, stops: 3, every: Duration::from_secs(3), sigterm_too: true, dynamodb_checkpoints: true, workers: 2 },
    );
}

#[test]
fn twenty_sigkills_under_load_lose_nothing() {
    churn(
        "kill20",
        Churn { records: 24_000, sensors: 8, rate: 400, stops: 20, every: Duration::from_secs(3), sigterm_too: false, dynamodb_checkpoints: false, workers: 2 },
    );
}

/// Whether tansu serves a fetch from `offset` of partition 0 only by
/// skipping to the next record batch, or with nothing at all when the batch
/// holding it is the last (tansu 0.6 returns only batches that start at or
/// after the offset asked for).
fn inside_a_batch(topic: &str, offset: i64) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", services().brokers).set("group.id", unique("probe")).create().expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(offset)).unwrap();
    consumer.assign(&list).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => return m.offset() > offset,
            Some(Err(err)) => eprintln!("probing offset {offset}: {err}"),
            None => {}
        }
    }
    true
}

/// Resuming at an offset inside one of the broker's record batches (a
/// checkpoint's offset is wherever the last record absorbed ended) must
/// read the rest of that batch: tansu serves the next batch instead (or
/// nothing), so weir fetches from before the offset and skips what it has.
#[test]
fn resuming_inside_a_broker_batch_loses_nothing() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let s = services();
    let (topic, table, group) = (unique("midbatch"), unique("midbatch"), unique("g"));
    let dir = tempfile::tempdir().unwrap();
    let data = restart_data(dir.path(), 4000, 8);
    // As fast as it goes: the producer packs many records in a batch.
    produce(&topic, 1, &data, None, 0);
    let resume = 1;
    assert!(inside_a_batch(&topic, resume), "the broker serves offset {resume} exactly now: this test shows nothing any more");
    // The group's committed offset is where a never-checkpointed partition resumes.
    let committer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &s.brokers).set("group.id", &group).create().unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&topic, 0, Offset::Offset(resume)).unwrap();
    committer.commit(&list, CommitMode::Sync).unwrap();
    drop(committer);

    let rest = dir.path().join("rest.jsonl");
    let lines: Vec<&str> = std::fs::read_to_string(&data).unwrap().leak().lines().collect();
    std::fs::write(&rest, lines[resume as usize..].join("\n") + "\n").unwrap();
    let want = expected_for(dir.path(), &rest);
    let text = restart_pipeline(&kafka_source(&topic, &group), &dynamodb_sink(&table, "id"), &dir.path().join("checkpoints"));
    let log = run_to_end(&write_manifest(dir.path(), &text));
    let got = items_without(scan(&s.dynamodb, &table), &["window_start"]);
    assert_eq!(got, want, "resuming at {resume}:\n{log}");
    println!("resuming at offset {resume}, inside a batch: all {} windows of the {} records after it exact", want.len(), lines.len() - resume as usize);
}
