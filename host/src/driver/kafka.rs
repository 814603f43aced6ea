//! The Kafka driver: a member of a consumer group that owns the loop of a
//! Kafka run — polling, partition assignment and handover (claim, restore,
//! checkpoint, commit), idle ticks — around its workers' pipelines (one per
//! worker thread, each owning some of the partitions: see
//! [`Workers`](super::workers::Workers)). Auto-commit off:
//! offsets are committed only after a checkpoint has made durable every window result
//! and every window state that absorbed the records below them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::workers::Workers;
use crate::Timestamp;
use crate::manifest::KafkaSourceSpec;
use crate::pipeline::{Pipeline, PipelineError, Stats};
use crate::source::{Origin, SourceRecord};
use crate::state::checkpoint::{Owner, PartitionId, process_name};

/// Why the Kafka source stopped.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer for {brokers}: {source}")]
    Client {
        /// The brokers.
        brokers: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Worker(std::io::Error),
}

type Shared = Arc<Mutex<Workers>>;

/// How many records before a checkpoint's offset a restored partition is
/// fetched from (see `Handover::assign`).
const REREAD_BEFORE_CHECKPOINT: i64 = 10_000;

/// Owns partitions explicitly. On an assignment each partition is claimed
/// in the checkpoint store (fencing its former owner), its checkpoint
/// restored, and reading starts at the checkpoint's offset (committed
/// offsets are only a fallback). On a revoke each partition is
/// checkpointed, its offset committed, and its state dropped. Records
/// polled before a rebalance that took their partition away (or gave it
/// back afresh) are dropped, never processed into new state: the
/// partition's owner reads them again from its checkpoint.
struct Handover {
    workers: Shared,
    failure: Arc<Mutex<Option<PipelineError>>>,
    /// Each partition owned, with the rebalance count when it was assigned.
    owned: Mutex<HashMap<PartitionId, u64>>,
    /// Partitions assigned since the poll loop last looked, with the offset
    /// reading starts at (none: the committed offset).
    started: Mutex<Vec<(PartitionId, Option<i64>)>>,
    rebalances: AtomicU64,
}

impl ClientContext for Handover {
    // A partition's end is how the loop knows it has caught up, not an error.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::sink::kafka::log_client_error(error, reason);
    }

    // librdkafka's statistics (every `statistics.interval.ms`): the lag of
    // each partition this member reads, for `weir_consumer_lag`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let metrics = crate::metrics::global();
        let owned = self.owned.lock().expect("owned lock");
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                if partition < 0 {
                    continue;
                }
                let ours = owned.keys().any(|id| id.partition == partition && *id.topic == **topic);
                metrics.set_lag(topic, partition, if ours { p.consumer_lag } else { -1 });
            }
        }
        metrics.retain_lag(|topic, partition| owned.keys().any(|id| id.partition == partition && *id.topic == *topic));
    }
}

impl Handover {
    fn fail(&self, err: PipelineError) {
        *self.failure.lock().expect("failure lock") = Some(err);
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, list: &mut TopicPartitionList, count: u64) {
        let ids = partitions(list);
        let owner = owner_of(consumer);
        let mut workers = self.workers.lock().expect("workers lock");
        let mut resumed = Vec::new();
        for id in &ids {
            // Where reading resumes: the checkpoint's offset, or for a
            // partition never checkpointed the group's committed offset.
            let next = match workers.take_partition(id, &owner, Timestamp::now()) {
                Ok(Some(next)) => Some((next, "")),
                Ok(None) => match committed(consumer, id).map(|next| workers.skip_below(id, next).map(|()| (next, " (committed)"))).transpose() {
                    Ok(next) => next,
                    Err(err) => {
                        self.fail(err);
                        return;
                    }
                },
                Err(err) => {
                    tracing::error!("cannot take partition {id}: {err}");
                    self.fail(err);
                    return;
                }
            };
            match next {
                Some((next, how)) => {
                    // Fetch from a little before it: the records below it are
                    // skipped as already absorbed, and a broker that serves
                    // only batches starting at or after the offset asked for
                    // (tansu 0.6) still returns the batch holding it
                    // (librdkafka producers put at most 10,000 records in a
                    // batch).
                    let from = next.saturating_sub(REREAD_BEFORE_CHECKPOINT).max(0);
                    if let Err(err) = list.set_partition_offset(&id.topic, id.partition, Offset::Offset(from)) {
                        tracing::warn!("cannot start {id} at offset {from}: {err}");
                    }
                    resumed.push(format!("{id}@{next}{how}"));
                }
                None => resumed.push(format!("{id}@start")),
            }
            self.started.lock().expect("started lock").push((id.clone(), next.map(|(n, _)| n)));
            self.owned.lock().expect("owned lock").insert(id.clone(), count);
        }
        drop(workers);
        if !ids.is_empty() {
            tracing::info!("partitions assigned to {owner}: {}", resumed.join(", "));
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        let ids = partitions(list);
        {
            let mut owned = self.owned.lock().expect("owned lock");
            for id in &ids {
                owned.remove(id);
            }
        }
        if ids.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        let mut workers = self.workers.lock().expect("workers lock");
        match workers.release_partitions(&ids, Timestamp::now()) {
            Ok(offsets) => {
                drop(workers);
                commit(consumer, &offsets);
                tracing::info!("partitions revoked{}: {}", if lost { " (assignment lost)" } else { "" }, names(&ids));
            }
            Err(err) => {
                tracing::error!("cannot hand over partitions {}: {err}", names(&ids));
                self.fail(err);
            }
        }
    }

    // Whether a record of `id` polled at rebalance count `polled_at` may
    // be processed: its partition is still owned, by the same assignment.
    fn current(owned: &HashMap<PartitionId, u64>, topic: &str, partition: i32, polled_at: u64) -> bool {
        owned.iter().any(|(id, &assigned_at)| id.partition == partition && id.topic == topic && assigned_at <= polled_at)
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<PartitionId> {
    list.elements().iter().map(|e| PartitionId { topic: e.topic().to_owned(), partition: e.partition() }).collect()
}

// This member's id and the group generation, from librdkafka.
fn owner_of(consumer: &BaseConsumer<Handover>) -> Owner {
    use rdkafka::bindings as rd;
    // SAFETY: the metadata is a copy librdkafka allocates for us (or null
    // outside a group); its strings live until it is destroyed below.
    unsafe {
        let metadata = rd::rd_kafka_consumer_group_metadata(consumer.client().native_ptr());
        if metadata.is_null() {
            return Owner::local();
        }
        let generation = rd::rd_kafka_consumer_group_metadata_generation_id(metadata);
        let member = rd::rd_kafka_consumer_group_metadata_member_id(metadata);
        let member = if member.is_null() { String::new() } else { std::ffi::CStr::from_ptr(member).to_string_lossy().into_owned() };
        rd::rd_kafka_consumer_group_metadata_destroy(metadata);
        Owner { member, generation, process: process_name() }
    }
}

// The group's committed offset of `id`, if it has one.
fn committed(consumer: &BaseConsumer<Handover>, id: &PartitionId) -> Option<i64> {
    let mut list = TopicPartitionList::new();
    list.add_partition(&id.topic, id.partition);
    match consumer.committed_offsets(list, Duration::from_secs(10)) {
        Ok(found) => found.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(n) if n >= 0 => Some(n),
            _ => None,
        }),
        Err(err) => {
            tracing::warn!("cannot read the committed offset of {id}: {err}; starting where the group's reset policy says");
            None
        }
    }
}

fn commit(consumer: &BaseConsumer<Handover>, offsets: &[(PartitionId, i64)]) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (id, next) in offsets {
        if let Err(err) = list.add_partition_offset(&id.topic, id.partition, Offset::Offset(*next)) {
            tracing::warn!("cannot commit {id}: {err}");
        }
    }
    if let Err(err) = consumer.commit(&list, CommitMode::Sync) {
        // Reading resumes at the checkpoint's offset; the commit only
        // helps tools that watch the group's lag.
        tracing::warn!("offset commit failed (the checkpoint still has them): {err}");
    }
}

impl ConsumerContext for Handover {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, list: &mut TopicPartitionList) {
        let count = self.rebalances.fetch_add(1, Ordering::SeqCst) + 1;
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assign(consumer, list, count);
                let assigned = if cooperative { consumer.incremental_assign(list) } else { consumer.assign(list) };
                if let Err(err) = assigned {
                    tracing::error!("cannot assign {}: {err}", names(&partitions(list)));
                }
            }
            other => {
                if other != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!("rebalance error {other:?}: releasing the partitions");
                }
                self.revoke(consumer, list);
                let released = if cooperative { consumer.incremental_unassign(list) } else { consumer.unassign() };
                if let Err(err) = released {
                    tracing::warn!("cannot unassign: {err}");
                }
            }
        }
    }
}

fn names(ids: &[PartitionId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Reads Kafka into `pipelines`, one worker thread each, until `stop` is
/// set, checkpointing every `checkpoint_every` and once more at the end.
/// Open windows stay open (in the checkpoint) for the next run.
pub fn run(
    pipelines: Vec<Pipeline>,
    spec: &KafkaSourceSpec,
    batch_size: usize,
    checkpoint_every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Stats, KafkaSourceError> {
    let count = pipelines.len();
    let workers: Shared = Arc::new(Mutex::new(Workers::start(pipelines).map_err(KafkaSourceError::Worker)?));
    if count > 1 {
        tracing::info!("{count} workers, each owning some of the partitions");
    }
    let failure = Arc::new(Mutex::new(None));
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("group.id", &spec.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Tells when a restored partition has nothing to replay, so its
        // paused clock can run (see Pipeline::caught_up).
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", spec.start)
        // Consumer lag per partition for the metrics, once a second.
        .set("statistics.interval.ms", "1000");
    for (name, value) in &spec.properties {
        config.set(name, value);
    }
    let client_err = |source| KafkaSourceError::Client { brokers: spec.brokers.clone(), source };
    let handover = Handover {
        workers: workers.clone(),
        failure: failure.clone(),
        owned: Mutex::new(HashMap::new()),
        started: Mutex::new(Vec::new()),
        rebalances: AtomicU64::new(0),
    };
    let consumer: BaseConsumer<Handover> = config.create_with_context(handover).map_err(client_err)?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(client_err)?;
    tracing::info!(brokers = %spec.brokers, group = %spec.group_id, "subscribed to {}", topics.join(", "));

    let mut topic_names: HashMap<String, Arc<str>> = HashMap::new();
    let mut last_checkpoint = Instant::now();
    let mut last_error_log: Option<Instant> = None;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut last_message = Instant::now();
    let mut first_message: Option<Instant> = None;
    let mut idle_exit = false;
    // Time spent in polls that found nothing since the last message: time
    // spent waiting for the sink (an outage) is not idleness.
    let mut idle_for = Duration::ZERO;
    let mut unowned = 0u64;
    let mut gaps = Gaps::default();
    while !stop.load(Ordering::Relaxed) {
        if spec.exit_when_idle.is_some_and(|idle| idle_for >= idle) {
            tracing::info!("no message for {:?}: closing every window and stopping", spec.exit_when_idle.unwrap_or_default());
            idle_exit = true;
            break;
        }
        let mut batch = Vec::new();
        let mut polled_at = Vec::new();
        let polling = Instant::now();
        let deadline = polling + Duration::from_millis(100);
        while batch.len() < batch_size {
            let wait = if batch.is_empty() { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            match consumer.poll(wait) {
                Some(Ok(message)) => {
                    batch.push(record(&message, &mut topic_names));
                    polled_at.push(consumer.context().rebalances.load(Ordering::SeqCst));
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    workers.lock().expect("workers lock").caught_up(partition, Timestamp::now())?;
                }
                Some(Err(err)) => {
                    // Broker trouble: librdkafka reconnects by itself; say so
                    // now and then, and keep going.
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!("kafka: {err}; retrying");
                        last_error_log = Some(Instant::now());
                    }
                    break;
                }
                None => break,
            }
        }
        if let Some(err) = failure.lock().expect("failure lock").take() {
            return Err(err.into());
        }
        // A rebalance during the polls above may have taken partitions away.
        {
            let owned = consumer.context().owned.lock().expect("owned lock");
            let mut stamps = polled_at.iter();
            let before = batch.len();
            batch.retain(|r| {
                let polled_at = *stamps.next().expect("one stamp per record");
                Handover::current(&owned, &r.origin.source, r.origin.partition.unwrap_or(-1), polled_at)
            });
            if batch.len() < before {
                tracing::debug!("{} records of partitions no longer owned dropped (their owner reads them from its checkpoint)", before - batch.len());
                unowned += (before - batch.len()) as u64;
            }
        }
        for (id, next) in consumer.context().started.lock().expect("started lock").drain(..) {
            gaps.start(id, next);
        }
        let mut rereads: Vec<(Arc<str>, i32, u64)> = Vec::new();
        batch.retain(|r| {
            let partition = r.origin.partition.unwrap_or(-1);
            if rereads.iter().any(|(topic, p, _)| *p == partition && *topic == r.origin.source) {
                return false;
            }
            match gaps.see(&r.origin) {
                Seen::Next => true,
                Seen::Reread(from) => {
                    rereads.push((r.origin.source.clone(), partition, from));
                    false
                }
            }
        });
        for (topic, partition, from) in rereads {
            if let Err(err) = consumer.seek(&topic, partition, Offset::Offset(from as i64), Duration::from_secs(10)) {
                tracing::warn!("{topic}[{partition}]: cannot read again from {from}: {err}");
            }
        }
        if !batch.is_empty() {
            first_message.get_or_insert_with(Instant::now);
        }
        let got_messages = !batch.is_empty();
        idle_for = if got_messages { Duration::ZERO } else { idle_for + polling.elapsed() };
        let w = workers.lock().expect("workers lock");
        w.process(batch, Timestamp::now())?;
        if let Some(err) = w.failure() {
            return Err(err.into());
        }
        if got_messages {
            last_message = Instant::now();
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            let offsets = w.checkpoint(Timestamp::now())?;
            drop(w);
            commit(&consumer, &offsets);
            last_checkpoint = Instant::now();
        } else {
            drop(w);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            let s = workers.lock().expect("workers lock").stats();
            tracing::info!(
                "{} records ({:.0}/s), {} windows written, {} late, {} failed, {} skipped as already checkpointed",
                s.records,
                s.records as f64 / started.elapsed().as_secs_f64(),
                s.windows,
                s.late,
                s.failed,
                s.skipped
            );
            last_report = Instant::now();
        }
    }
    let w = workers.lock().expect("workers lock");
    if idle_exit {
        let records = w.finish()?.records;
        if let Some(first) = first_message {
            let span = last_message.saturating_duration_since(first).as_secs_f64().max(1e-3);
            tracing::info!("caught up: {records} records processed in {span:.2}s from the first message to the last ({:.0} records/s)", records as f64 / span);
        }
    }
    tracing::info!("stopping: writing a last checkpoint");
    let offsets = w.checkpoint(Timestamp::now())?;
    drop(w);
    commit(&consumer, &offsets);
    if gaps.skipped > 0 || gaps.recovered > 0 {
        tracing::warn!(
            "offset gaps: {} filled by a second read, {} accepted as the topic's own ({} offsets; normal only for compacted or transactional topics)",
            gaps.recovered,
            gaps.count,
            gaps.skipped
        );
    }
    if unowned > 0 {
        tracing::info!("{unowned} records polled before a rebalance took their partition were dropped (their new owner reads them)");
    }
    let stats = workers.lock().expect("workers lock").stats();
    Ok(stats)
}

/// Offsets the broker skipped within a partition. A plain topic has none,
/// but a broker may serve a fetch from the middle of a record batch by
/// starting at the next batch: tansu 0.6 does (its fetch returns only
/// batches that *start* at or after the offset asked for), so resuming at
/// a checkpoint's offset would lose the rest of that batch. On a gap weir
/// seeks back before it, further each time (×16) until the batch holding
/// the wanted offset comes back (the records before it are skipped as
/// already absorbed); a gap still there when reading from offset 0 is the
/// topic's own (compaction, transaction markers), and that partition's
/// gaps are then only counted. Either way it is said in the log.
#[derive(Default)]
struct Gaps {
    /// By partition number, then topic (no key to build per record).
    partitions: HashMap<i32, Vec<(Arc<str>, Track)>>,
    /// Gaps accepted as the topic's own, and the offsets they skipped.
    count: u64,
    skipped: u64,
    /// Gaps that reading again filled.
    recovered: u64,
}

#[derive(Default)]
struct Track {
    next: Option<u64>,
    /// Reading again: the offset wanted, and where the last seek went.
    rereading: Option<(u64, u64)>,
    /// Gaps here are the topic's own (still there from offset 0).
    gappy: bool,
}

/// What to do with a record, by its offset.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Process it.
    Next,
    /// Drop it and the rest of its partition's batch; read again from here.
    Reread(u64),
}

impl Gaps {
    fn start(&mut self, id: PartitionId, next: Option<i64>) {
        let track = Track { next: next.map(|n| n.max(0) as u64), ..Track::default() };
        let topics = self.partitions.entry(id.partition).or_default();
        match topics.iter_mut().find(|(topic, _)| **topic == *id.topic) {
            Some((_, t)) => *t = track,
            None => topics.push((Arc::from(id.topic.as_str()), track)),
        }
    }

    fn see(&mut self, origin: &Origin) -> Seen {
        let Some(partition) = origin.partition else { return Seen::Next };
        let Some(track) = self.partitions.get_mut(&partition).and_then(|topics| topics.iter_mut().find(|(topic, _)| *topic == origin.source)).map(|(_, t)| t)
        else {
            return Seen::Next;
        };
        let (topic, position) = (&origin.source, origin.position);
        if let Some((wanted, seeked)) = track.rereading {
            if position > wanted {
                if seeked > 0 {
                    let back = (wanted - seeked).saturating_mul(16);
                    let from = wanted.saturating_sub(back);
                    track.rereading = Some((wanted, from));
                    tracing::warn!("{topic}[{partition}]: offset {wanted} still not served (got {position}); reading again from {from}");
                    return Seen::Reread(from);
                }
                track.rereading = None;
                track.gappy = true;
                self.count += 1;
                self.skipped += position - wanted;
                tracing::warn!(
                    "{topic}[{partition}]: offsets {wanted} to {} are not in the topic ({} skipped; normal only for compacted or transactional topics)",
                    position - 1,
                    position - wanted
                );
            } else if position == wanted {
                track.rereading = None;
                self.recovered += 1;
                tracing::info!("{topic}[{partition}]: offset {wanted} served on reading again from {seeked}");
            }
            track.next = Some(position + 1);
            return Seen::Next;
        }
        if let Some(expected) = track.next
            && position > expected
        {
            if !track.gappy {
                let from = expected.saturating_sub((position - expected).max(64));
                track.rereading = Some((expected, from));
                tracing::warn!(
                    "{topic}[{partition}]: the broker returned offset {position} where {expected} was next; reading again from {from} (records before {expected} are skipped)"
                );
                return Seen::Reread(from);
            }
            self.count += 1;
            self.skipped += position - expected;
        }
        track.next = Some(position + 1);
        Seen::Next
    }
}

fn record(message: &BorrowedMessage<'_>, topics: &mut HashMap<String, Arc<str>>) -> SourceRecord {
    let topic = topics.entry(message.topic().to_owned()).or_insert_with(|| Arc::from(message.topic())).clone();
    let timestamp = message.timestamp().to_millis().map_or_else(Timestamp::now, |ms| Timestamp(ms.saturating_mul(1000)));
    let headers =
        message.headers().map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect()).unwrap_or_default();
    SourceRecord {
        value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        key: message.key().map(<[u8]>::to_vec),
        timestamp,
        headers,
        origin: Origin { source: topic, partition: Some(message.partition()), position: message.offset().max(0) as u64, offset: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(entries: &[(&str, i32, u64)]) -> HashMap<PartitionId, u64> {
        entries.iter().map(|&(t, p, at)| (PartitionId { topic: t.into(), partition: p }, at)).collect()
    }

    #[test]
    fn records_of_a_partition_taken_away_or_given_back_since_their_poll_are_stale() {
        // Owned since rebalance 3.
        let now = owned(&[("t", 0, 3), ("t", 1, 1)]);
        assert!(Handover::current(&now, "t", 1, 2), "owned throughout");
        assert!(Handover::current(&now, "t", 0, 3), "polled after the assignment");
        assert!(!Handover::current(&now, "t", 0, 2), "polled before a revoke and re-assignment: its new state starts at the checkpoint");
        assert!(!Handover::current(&now, "t", 2, 3), "not owned any more");
        assert!(!Handover::current(&now, "u", 0, 3), "another topic");
    }

    #[test]
    fn a_gap_is_read_again_from_further_back_until_served_or_read_from_offset_0() {
        let at = |partition, position| Origin { source: Arc::from("t"), partition: Some(partition), position, offset: None };
        let mut gaps = Gaps::default();
        gaps.start(PartitionId { topic: "t".into(), partition: 0 }, Some(10_000));
        gaps.start(PartitionId { topic: "t".into(), partition: 1 }, None);
        for origin in [at(0, 10_000), at(0, 10_001), at(1, 500), at(1, 501), at(0, 10_002)] {
            assert_eq!(gaps.see(&origin), Seen::Next, "contiguous, and a committed start is taken as found");
        }
        // tansu resumed inside a batch and served the next one: read again
        // from before it; the batch holding 1003 comes back, and its records
        // before 10,003 pass (the pipeline skips them as already absorbed).
        assert_eq!(gaps.see(&at(0, 10_113)), Seen::Reread(10_003 - 110));
        assert_eq!(gaps.see(&at(0, 10_100)), Seen::Reread(10_003 - 110 * 16), "the batch began further back");
        for position in 8_300..10_003 {
            assert_eq!(gaps.see(&at(0, position)), Seen::Next);
        }
        assert_eq!((gaps.recovered, gaps.count), (0, 0));
        assert_eq!(gaps.see(&at(0, 10_003)), Seen::Next);
        assert_eq!((gaps.recovered, gaps.count), (1, 0));
        assert_eq!(gaps.see(&at(0, 10_004)), Seen::Next);
        // A gap still there when read from offset 0 is the topic's own, and
        // so is every later gap of that partition.
        assert_eq!(gaps.see(&at(1, 510)), Seen::Reread(502 - 64));
        assert_eq!(gaps.see(&at(1, 510)), Seen::Reread(0));
        assert_eq!(gaps.see(&at(1, 510)), Seen::Next);
        assert_eq!(gaps.see(&at(1, 520)), Seen::Next);
        assert_eq!((gaps.count, gaps.skipped), (2, 8 + 9));
        // A new assignment starts afresh.
        gaps.start(PartitionId { topic: "t".into(), partition: 1 }, Some(5));
        assert_eq!(gaps.see(&at(1, 5)), Seen::Next);
        assert_eq!(gaps.see(&at(1, 7)), Seen::Reread(0));
    }
}
