//! Kafka out: window results as JSON values keyed by the window key, from an
//! idempotent producer; flushed (every message acknowledged) before a
//! checkpoint commits the input offsets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use super::{Rejection, Sink, SinkError, WindowResult};
use crate::manifest::KafkaSinkSpec;

/// How long a flush waits for every message to be acknowledged.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Remembers deliveries that failed for good (after librdkafka's retries).
#[derive(Clone, Default)]
pub struct DeliveryFailures(Arc<Mutex<Vec<String>>>);

impl ClientContext for DeliveryFailures {}

impl ProducerContext for DeliveryFailures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, message)) = result {
            let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
            self.0.lock().expect("not poisoned").push(format!("key `{key}`: {err}"));
        }
    }
}

impl DeliveryFailures {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

/// An idempotent producer for one topic.
pub fn producer(brokers: &str, properties: &[(String, String)], topic: &str) -> Result<(ThreadedProducer<DeliveryFailures>, DeliveryFailures), SinkError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("enable.idempotence", "true").set("linger.ms", "5");
    for (name, value) in properties {
        config.set(name, value);
    }
    let failures = DeliveryFailures::default();
    let producer = config
        .create_with_context(failures.clone())
        .map_err(|err| SinkError::Kafka { topic: topic.to_owned(), message: format!("cannot create a producer for {brokers}: {err}") })?;
    Ok((producer, failures))
}

/// Creates `topic` with `partitions` partitions unless it exists.
/// (Brokers such as tansu do not create topics on first use.)
pub fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().map_err(|e| SinkError::Kafka { topic: topic.to_owned(), message: e.to_string() })?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))))
        .map_err(|e| SinkError::Kafka { topic: topic.to_owned(), message: format!("create topic: {e}") })?;
    for result in results {
        match result {
            Ok(_) => tracing::info!("created topic {topic} with {partitions} partitions"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(SinkError::Kafka { topic: topic.to_owned(), message: format!("create topic: {code}") }),
        }
    }
    Ok(())
}

/// Queues `record`, waiting while librdkafka's local queue is full.
pub fn send<K, P>(producer: &ThreadedProducer<DeliveryFailures>, mut record: BaseRecord<'_, K, P>) -> Result<(), rdkafka::error::KafkaError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((err, _)) => return Err(err),
        }
    }
}

/// librdkafka's client errors in the log, as its default context writes
/// them, but for a partition's end: a consumer with
/// `enable.partition.eof` reads that as news, not as an error.
pub fn log_client_error(error: rdkafka::error::KafkaError, reason: &str) {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
        tracing::error!(target: "librdkafka", "librdkafka: {error} {reason}");
    }
}

/// A record's Kafka headers, in order, with room for `more` to be added.
pub fn headers(pairs: &[(String, Vec<u8>)], more: usize) -> rdkafka::message::OwnedHeaders {
    let mut headers = rdkafka::message::OwnedHeaders::new_with_capacity(pairs.len() + more);
    for (name, value) in pairs {
        headers = headers.insert(rdkafka::message::Header { key: name.as_str(), value: Some(value.as_slice()) });
    }
    headers
}

/// Sends every queued message and waits for the acknowledgements.
pub fn flush(producer: &ThreadedProducer<DeliveryFailures>, failures: &DeliveryFailures, topic: &str) -> Result<(), SinkError> {
    producer.flush(FLUSH_TIMEOUT).map_err(|err| SinkError::Kafka { topic: topic.to_owned(), message: format!("flush: {err}") })?;
    let failed = failures.take();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SinkError::Kafka { topic: topic.to_owned(), message: format!("{} messages not delivered, first {}", failed.len(), failed[0]) })
    }
}

/// The Kafka topic sink.
pub struct KafkaSink {
    topic: String,
    producer: ThreadedProducer<DeliveryFailures>,
    failures: DeliveryFailures,
}

impl KafkaSink {
    /// A producer for `spec.topic`.
    pub fn connect(spec: &KafkaSinkSpec) -> Result<Self, SinkError> {
        ensure_topic(&spec.brokers, &spec.topic, 1)?;
        let (producer, failures) = producer(&spec.brokers, &spec.properties, &spec.topic)?;
        Ok(KafkaSink { topic: spec.topic.clone(), producer, failures })
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        let record = BaseRecord::to(&self.topic).key(result.key.as_bytes()).payload(result.object.as_bytes());
        send(&self.producer, record).map_err(|err| SinkError::Rejected(Rejection::of(result, format!("Kafka refused the message: {err}"))))
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        flush(&self.producer, &self.failures, &self.topic)?;
        Ok(Vec::new())
    }
}
