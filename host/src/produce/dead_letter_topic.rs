//! A Kafka dead-letter topic (`[dead_letter] kind = "kafka"`) read back as
//! the records it holds, to send them again once what failed them is
//! fixed. Each message there is the record as it was read — value, key,
//! timestamp and its own headers — followed by the `weir.*` headers that
//! say why; those are taken off again. Windows that could not be
//! formatted or written are not records and are skipped.
//!
//! Each partition is read from its start to its end (letters written
//! while it is read may be among them). Nothing is committed and the
//! topic is not changed: running it twice sends the records twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::dead_letters::Resend;

/// How long reading may go without a message before it gives up.
const QUIET: Duration = Duration::from_secs(30);
/// How long a metadata request may take.
const REQUEST: Duration = Duration::from_secs(10);
/// How often a long read says how far it got.
const PROGRESS: Duration = Duration::from_secs(1);

/// Why a dead-letter topic cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterTopicError {
    /// The broker could not be asked, or did not answer.
    #[error("cannot read the dead-letter topic {topic}: {reason}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A message is not a dead letter.
    #[error("{topic}[{partition}] offset {offset}: {reason}")]
    Letter {
        /// The topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
}

// The client's errors in the log, but for a partition's end: that is how
// reading one is known to be done.
struct EndsAreNotErrors;

impl ClientContext for EndsAreNotErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        crate::sink::kafka::log_client_error(error, reason);
    }
}

impl ConsumerContext for EndsAreNotErrors {}

/// The records of dead-letter topic `topic` on `brokers`, partition by
/// partition in offset order, and how many of its letters were windows
/// (skipped). Stops at the first message that is not a dead letter,
/// naming it: nothing is sent from a topic half understood.
pub fn read(brokers: &str, topic: &str) -> Result<(Vec<Resend>, usize), DeadLetterTopicError> {
    let kafka = |reason: String| DeadLetterTopicError::Kafka { topic: topic.to_owned(), reason };
    let consumer: BaseConsumer<EndsAreNotErrors> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Required by the client; nothing is committed under it.
        .set("group.id", "weir-produce-dead-letters")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(EndsAreNotErrors)
        .map_err(|err| kafka(format!("cannot create a consumer for {brokers}: {err}")))?;
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST).map_err(|err| kafka(format!("metadata: {err}")))?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().iter().map(|p| p.id()).collect(),
        Some(t) if !matches!(t.error(), None | Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) => return Err(kafka(format!("{:?}", t.error().expect("checked")))),
        _ => return Err(kafka(format!("no such topic on {brokers}"))),
    };
    // Each partition from its start to the end a fetch finds (not to the
    // high watermark a ListOffsets request answers: tansu answered one
    // short of a topic's two messages, where its fetch was right).
    let mut assigned = TopicPartitionList::new();
    for &partition in &partitions {
        assigned.add_partition_offset(topic, partition, Offset::Beginning).map_err(|err| kafka(err.to_string()))?;
    }
    consumer.assign(&assigned).map_err(|err| kafka(format!("assign: {err}")))?;
    let mut reading: BTreeSet<i32> = partitions.into_iter().collect();
    let (mut by_partition, mut windows) = (BTreeMap::<i32, Vec<Resend>>::new(), 0);
    let (mut heard, mut reported, mut read) = (Instant::now(), Instant::now(), 0usize);
    while !reading.is_empty() {
        if reported.elapsed() >= PROGRESS {
            eprintln!("produce: {read} letters read from {topic}, {} partitions to go", reading.len());
            reported = Instant::now();
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                (heard, read) = (Instant::now(), read + 1);
                let (partition, offset) = (m.partition(), m.offset());
                let headers: Vec<(String, Vec<u8>)> = m.headers().map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec())).collect()).unwrap_or_default();
                let letter = resend(m.payload(), m.key(), m.timestamp().to_millis(), headers)
                    .map_err(|reason| DeadLetterTopicError::Letter { topic: topic.to_owned(), partition, offset, reason })?;
                match letter {
                    Some(record) => by_partition.entry(partition).or_default().push(record),
                    None => windows += 1,
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                heard = Instant::now();
                reading.remove(&partition);
            }
            // Often passing (a broker reconnecting); the quiet limit decides.
            Some(Err(err)) => tracing::warn!(topic, "reading the dead-letter topic: {err}"),
            None if heard.elapsed() > QUIET => {
                let left: Vec<String> = reading.iter().map(i32::to_string).collect();
                return Err(kafka(format!("nothing heard for {} s with partitions {} not read to their end", QUIET.as_secs(), left.join(", "))));
            }
            None => {}
        }
    }
    Ok((by_partition.into_values().flatten().collect(), windows))
}

/// The record in one message of a dead-letter topic, `None` for a
/// window's letter. The record's own headers are the ones before the
/// last `weir.kind` (the first of those the dead-letter output adds), so
/// a record that came with `weir.*` headers of its own keeps them.
pub fn resend(payload: Option<&[u8]>, key: Option<&[u8]>, timestamp_ms: Option<i64>, mut headers: Vec<(String, Vec<u8>)>) -> Result<Option<Resend>, String> {
    let Some(start) = headers.iter().rposition(|(name, _)| name == "weir.kind") else {
        return Err("not a dead letter: no `weir.kind` header".into());
    };
    let ours = headers.split_off(start);
    let header = |name: &str| ours.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
    // Only a window fails in the format or sink stage, and a window's
    // letter names `window` as its source.
    if header("weir.source") == Some(b"window".as_slice()) && matches!(header("weir.stage"), Some(b"format" | b"sink")) {
        return Ok(None);
    }
    Ok(Some(Resend { value: payload.unwrap_or_default().to_vec(), key: key.map(<[u8]>::to_vec), timestamp_ms, headers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(names: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        names.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn the_record_keeps_its_own_headers_and_loses_ours() {
        let headers = pairs(&[("trace", "t1"), ("weir.kind", "mine"), ("weir.kind", "failed"), ("weir.stage", "deserialize"), ("weir.reason", "bad"), ("weir.source", "in"), ("weir.offset", "4")]);
        let record = resend(Some(b"\xffx"), Some(b"k"), Some(1_700_000_000_123), headers).unwrap().unwrap();
        assert_eq!(record, Resend { value: b"\xffx".to_vec(), key: Some(b"k".to_vec()), timestamp_ms: Some(1_700_000_000_123), headers: pairs(&[("trace", "t1"), ("weir.kind", "mine")]) });
    }

    #[test]
    fn a_window_is_skipped_and_a_record_from_a_topic_named_window_is_not() {
        let window = pairs(&[("weir.kind", "failed"), ("weir.stage", "format"), ("weir.source", "window"), ("weir.offset", "0")]);
        assert_eq!(resend(Some(b"{}"), None, Some(1), window).unwrap(), None);
        let record = pairs(&[("weir.kind", "failed"), ("weir.stage", "deserialize"), ("weir.source", "window"), ("weir.offset", "3")]);
        assert!(resend(Some(b"x"), None, Some(1), record).unwrap().is_some());
    }

    #[test]
    fn a_message_without_our_headers_is_refused() {
        let err = resend(Some(b"x"), None, None, pairs(&[("trace", "t1")])).unwrap_err();
        assert!(err.contains("`weir.kind`"), "{err}");
    }
}
