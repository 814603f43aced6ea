//! Kafka in: a member of a consumer group, auto-commit off. Offsets are
//! committed only after a checkpoint has made durable every window result
//! and every window state that absorbed the records below them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{Origin, SourceRecord};
use crate::Timestamp;
use crate::manifest::KafkaSourceSpec;
use crate::pipeline::{Pipeline, PipelineError, Stats};
use crate::state::checkpoint::PartitionId;

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
}

type Shared = Arc<Mutex<Pipeline>>;

/// Hands partitions over on a rebalance: a revoked partition is checkpointed
/// and its offset committed before another member may take it; an assigned
/// partition's checkpoint is restored.
struct Handover {
    pipeline: Shared,
    failure: Arc<Mutex<Option<PipelineError>>>,
}

impl ClientContext for Handover {}

fn partitions(list: &TopicPartitionList) -> Vec<PartitionId> {
    list.elements().iter().map(|e| PartitionId { topic: e.topic().to_owned(), partition: e.partition() }).collect()
}

fn commit(consumer: &BaseConsumer<Handover>, offsets: &[(PartitionId, i64)]) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (id, next) in offsets {
        if let Err(err) = list.add_partition_offset(&id.topic, id.partition, Offset::Offset(*next)) {
            tracing::warn!("cannot commit {}[{}]: {err}", id.topic, id.partition);
        }
    }
    if let Err(err) = consumer.commit(&list, CommitMode::Sync) {
        // The checkpoint holds the offsets too: a restart skips what it
        // absorbed even if this commit was lost.
        tracing::warn!("offset commit failed (the checkpoint still has them): {err}");
    }
}

impl ConsumerContext for Handover {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let ids = partitions(list);
            if ids.is_empty() {
                return;
            }
            let mut pipeline = self.pipeline.lock().expect("pipeline lock");
            match pipeline.release_partitions(&ids, Timestamp::now()) {
                Ok(offsets) => {
                    commit(consumer, &offsets);
                    tracing::info!("partitions revoked: {}", names(&ids));
                }
                Err(err) => {
                    tracing::error!("cannot hand over partitions {}: {err}", names(&ids));
                    *self.failure.lock().expect("failure lock") = Some(err);
                }
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let ids = partitions(list);
            let mut pipeline = self.pipeline.lock().expect("pipeline lock");
            for id in &ids {
                if let Err(err) = pipeline.take_partition(id, Timestamp::now()) {
                    tracing::error!("cannot take partition {}[{}]: {err}", id.topic, id.partition);
                    *self.failure.lock().expect("failure lock") = Some(err);
                    return;
                }
            }
            if !ids.is_empty() {
                tracing::info!("partitions assigned: {}", names(&ids));
            }
        }
    }
}

fn names(ids: &[PartitionId]) -> String {
    ids.iter().map(|id| format!("{}[{}]", id.topic, id.partition)).collect::<Vec<_>>().join(", ")
}

/// Reads Kafka into `pipeline` until `stop` is set, checkpointing every
/// `checkpoint_every` and once more at the end. Open windows stay open (in
/// the checkpoint) for the next run.
pub fn run(
    pipeline: Pipeline,
    spec: &KafkaSourceSpec,
    batch_size: usize,
    checkpoint_every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Stats, KafkaSourceError> {
    let pipeline: Shared = Arc::new(Mutex::new(pipeline));
    let failure = Arc::new(Mutex::new(None));
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("group.id", &spec.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", spec.start);
    for (name, value) in &spec.properties {
        config.set(name, value);
    }
    let client_err = |source| KafkaSourceError::Client { brokers: spec.brokers.clone(), source };
    let consumer: BaseConsumer<Handover> = config.create_with_context(Handover { pipeline: pipeline.clone(), failure: failure.clone() }).map_err(client_err)?;
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
    while !stop.load(Ordering::Relaxed) {
        if spec.exit_when_idle.is_some_and(|idle| last_message.elapsed() >= idle) {
            tracing::info!("no message for {:?}: closing every window and stopping", spec.exit_when_idle.unwrap_or_default());
            idle_exit = true;
            break;
        }
        let mut batch = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(100);
        while batch.len() < batch_size {
            let wait = if batch.is_empty() { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            match consumer.poll(wait) {
                Some(Ok(message)) => batch.push(record(&message, &mut topic_names)),
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
        if !batch.is_empty() {
            first_message.get_or_insert_with(Instant::now);
        }
        let got_messages = !batch.is_empty();
        let mut p = pipeline.lock().expect("pipeline lock");
        p.process(batch, Timestamp::now())?;
        if got_messages {
            last_message = Instant::now();
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            let offsets = p.checkpoint(None, Timestamp::now())?;
            drop(p);
            commit(&consumer, &offsets);
            last_checkpoint = Instant::now();
        } else {
            drop(p);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            let s = pipeline.lock().expect("pipeline lock").stats();
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
    let mut p = pipeline.lock().expect("pipeline lock");
    if idle_exit {
        p.finish()?;
        if let Some(first) = first_message {
            let span = last_message.saturating_duration_since(first).as_secs_f64().max(1e-3);
            let records = p.stats().records;
            tracing::info!("caught up: {records} records processed in {span:.2}s from the first message to the last ({:.0} records/s)", records as f64 / span);
        }
    }
    tracing::info!("stopping: writing a last checkpoint");
    let offsets = p.checkpoint(None, Timestamp::now())?;
    drop(p);
    commit(&consumer, &offsets);
    let stats = pipeline.lock().expect("pipeline lock").stats();
    Ok(stats)
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
        origin: Origin { source: topic, partition: Some(message.partition()), position: message.offset().max(0) as u64 },
    }
}
