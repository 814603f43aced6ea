//! DynamoDB out: each window result becomes an item keyed by what makes the
//! window unique — (window key, window start), or (window key, window id)
//! for collect windows, whose starts can repeat — so a replay after a crash
//! overwrites instead of adding.
//! Items go in BatchWriteItem calls of up to 25, several in flight, with
//! UnprocessedItems and throttling retried with backoff and jitter.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use rand::Rng;
use serde_json::Value;

use super::{Rejection, Sink, SinkError, WindowResult};
use crate::manifest::{DynamoSinkSpec, SortBy};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
const BATCH: usize = 25;
/// How long the sink keeps retrying an unreachable or throttling DynamoDB
/// before the pipeline stops (nothing is lost either way: offsets wait).
const OUTAGE_LIMIT: Duration = Duration::from_secs(600);

/// Converts a format stage's JSON into a DynamoDB attribute. Numbers keep
/// their exact decimal text (`N`), objects become `M`, arrays `L`.
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        // serde_json keeps the number's text (arbitrary_precision).
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()),
    }
}

/// DynamoDB's own measure of an item: attribute names plus value sizes.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    fn size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(items) => 3 + items.iter().map(|i| size(i) + 1).sum::<usize>(),
            AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + size(v) + 1).sum::<usize>(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + size(v)).sum()
}

struct Pending {
    item: HashMap<String, AttributeValue>,
    window: WindowResult,
}

/// The DynamoDB sink.
pub struct DynamoSink {
    spec: DynamoSinkSpec,
    client: Client,
    runtime: tokio::runtime::Runtime,
    pending: Vec<Pending>,
    /// Index into `pending` by (key, sort value), so one batch never holds the
    /// same item twice (DynamoDB refuses that).
    slot: HashMap<(String, i64), usize>,
}

impl DynamoSink {
    /// Connects with the standard credential chain, `region` and
    /// `endpoint` overrides, and creates the table if asked and missing.
    pub fn connect(spec: &DynamoSinkSpec) -> Result<Self, SinkError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| SinkError::Io { target: "tokio runtime".into(), source })?;
        let client = runtime.block_on(client(spec.endpoint.as_deref(), spec.region.as_deref()));
        let sink = DynamoSink { spec: spec.clone(), client, runtime, pending: Vec::new(), slot: HashMap::new() };
        sink.runtime.block_on(ensure_table(&sink.client, spec))?;
        Ok(sink)
    }

    fn send_pending(&mut self) -> Result<Vec<Rejection>, SinkError> {
        let pending = std::mem::take(&mut self.pending);
        self.slot.clear();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let table = self.spec.table.clone();
        let client = self.client.clone();
        let in_flight = self.spec.max_in_flight;
        let chunks: Vec<Vec<Pending>> = pending.into_iter().fold(Vec::new(), |mut chunks: Vec<Vec<Pending>>, p| {
            match chunks.last_mut() {
                Some(last) if last.len() < BATCH => last.push(p),
                _ => chunks.push(vec![p]),
            }
            chunks
        });
        self.runtime.block_on(async move {
            let mut rejected = Vec::new();
            let mut set = tokio::task::JoinSet::new();
            let mut chunks = chunks.into_iter();
            loop {
                while set.len() < in_flight {
                    let Some(chunk) = chunks.next() else { break };
                    set.spawn(write_batch(client.clone(), table.clone(), chunk));
                }
                match set.join_next().await {
                    None => break,
                    Some(Ok(Ok(mut r))) => rejected.append(&mut r),
                    Some(Ok(Err(err))) => return Err(err),
                    Some(Err(join)) => return Err(SinkError::Dynamo { table: table.clone(), message: join.to_string() }),
                }
            }
            Ok(rejected)
        })
    }
}

/// A DynamoDB client with the standard credential chain and the given
/// endpoint (DynamoDB Local) and region overrides.
pub async fn client(endpoint: Option<&str>, region: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    Client::new(&loader.load().await)
}

/// Checks the table exists (creating it when `spec.create_table` says so) and waits until it is ACTIVE.
pub async fn ensure_table(client: &Client, spec: &DynamoSinkSpec) -> Result<(), SinkError> {
    let err = |message: String| SinkError::Dynamo { table: spec.table.clone(), message };
    match client.describe_table().table_name(&spec.table).send().await {
        Ok(_) => return Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            if !spec.create_table {
                return Err(err("the table does not exist; create it, or set sink.create_table = true".into()));
            }
        }
        Err(e) => return Err(err(format!("cannot reach DynamoDB: {}", describe(&e)))),
    }
    tracing::info!(table = %spec.table, "creating the table ({} string, {} number)", spec.partition_key, spec.sort_key);
    let attr = |name: &str, t| AttributeDefinition::builder().attribute_name(name).attribute_type(t).build().expect("complete");
    let key = |name: &str, t| KeySchemaElement::builder().attribute_name(name).key_type(t).build().expect("complete");
    let created = client
        .create_table()
        .table_name(&spec.table)
        .attribute_definitions(attr(&spec.partition_key, ScalarAttributeType::S))
        .attribute_definitions(attr(&spec.sort_key, ScalarAttributeType::N))
        .key_schema(key(&spec.partition_key, KeyType::Hash))
        .key_schema(key(&spec.sort_key, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created
        && !e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception())
    {
        return Err(err(format!("cannot create it: {}", describe(&e))));
    }
    for _ in 0..120 {
        let status = client.describe_table().table_name(&spec.table).send().await.ok().and_then(|d| d.table).and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(err("created, but not ACTIVE within 60 s".into()))
}

/// A short account of an SDK error: the service's code and message when it
/// answered, the whole chain otherwise (connection trouble).
pub fn describe<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => format!("{}: {}", service.code().unwrap_or("error"), service.message().unwrap_or("no message")),
        None => aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
    }
}

fn backoff(attempt: u32) -> Duration {
    let cap = 50u64 * (1 << attempt.min(6));
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}

// Errors no retry or split can help: the pipeline must stop and say why.
fn fatal(code: &str) -> Option<&'static str> {
    match code {
        "ResourceNotFoundException" => Some("the table does not exist (deleted while running?)"),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException" => Some("the credentials were refused"),
        "AccessDeniedException" => Some("access denied: the credentials may not write this table"),
        _ => None,
    }
}

enum Refusal {
    // Throttling, a server error, no answer: try again later.
    Retry(String),
    // This request's items were refused (validation): split or reject.
    Items(String),
    // Stop the pipeline.
    Fatal(String),
}

fn classify<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> Refusal
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = describe(e);
    match e.as_service_error() {
        None => Refusal::Retry(message),
        Some(service) => {
            let code = service.code().unwrap_or("");
            if let Some(why) = fatal(code) {
                return Refusal::Fatal(format!("{why}: {message}"));
            }
            match code {
                "ProvisionedThroughputExceededException" | "RequestLimitExceeded" | "ThrottlingException" | "InternalServerError" | "ServiceUnavailable" => {
                    Refusal::Retry(message)
                }
                _ => Refusal::Items(message),
            }
        }
    }
}

async fn write_batch(client: Client, table: String, chunk: Vec<Pending>) -> Result<Vec<Rejection>, SinkError> {
    let mut requests: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
    for p in &chunk {
        let put = PutRequest::builder().set_item(Some(p.item.clone())).build().expect("item set");
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    let mut attempt = 0;
    let started = std::time::Instant::now();
    while !requests.is_empty() {
        let call = client.batch_write_item().request_items(&table, requests.clone()).send().await;
        match call {
            Ok(out) => {
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
                if !requests.is_empty() {
                    tracing::debug!(table, "{} unprocessed items; retrying", requests.len());
                }
            }
            Err(e) => match classify(&e) {
                Refusal::Fatal(message) => return Err(SinkError::Dynamo { table, message }),
                // One bad item fails the whole batch: write them one by
                // one, so only the bad one is refused.
                Refusal::Items(message) => {
                    tracing::warn!(table, "BatchWriteItem of {} items refused ({message}); writing them one by one", requests.len());
                    return write_each(&client, &table, requests, &chunk).await;
                }
                Refusal::Retry(message) => {
                    if started.elapsed() >= OUTAGE_LIMIT {
                        return Err(SinkError::Dynamo { table, message: format!("gave up after {OUTAGE_LIMIT:?} of retries: {message}") });
                    }
                    if attempt < 3 || attempt % 10 == 0 {
                        tracing::warn!(table, attempt, "BatchWriteItem failed, retrying (the pipeline waits): {message}");
                    }
                }
            },
        }
        if !requests.is_empty() {
            attempt += 1;
            if started.elapsed() >= OUTAGE_LIMIT {
                return Err(SinkError::Dynamo { table, message: format!("{} items still unprocessed after {OUTAGE_LIMIT:?}", requests.len()) });
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Ok(Vec::new())
}

// Writes each request with PutItem, retrying what may pass later; returns
// the items DynamoDB refused, each with its own reason.
async fn write_each(client: &Client, table: &str, requests: Vec<WriteRequest>, chunk: &[Pending]) -> Result<Vec<Rejection>, SinkError> {
    let mut rejected = Vec::new();
    for request in requests {
        let Some(item) = request.put_request.map(|p| p.item) else { continue };
        // UnprocessedItems may come back in another order: match by content.
        let window = chunk.iter().find(|p| p.item == item).map(|p| &p.window);
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            match client.put_item().table_name(table).set_item(Some(item.clone())).send().await {
                Ok(_) => break,
                Err(e) => match classify(&e) {
                    Refusal::Fatal(message) => return Err(SinkError::Dynamo { table: table.to_owned(), message }),
                    Refusal::Items(message) => {
                        if let Some(w) = window {
                            rejected.push(Rejection::of(w, format!("DynamoDB refused the item: {message}")));
                        }
                        break;
                    }
                    Refusal::Retry(message) => {
                        attempt += 1;
                        if started.elapsed() >= OUTAGE_LIMIT {
                            return Err(SinkError::Dynamo {
                                table: table.to_owned(),
                                message: format!("gave up after {OUTAGE_LIMIT:?} of retries: {message}"),
                            });
                        }
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                },
            }
        }
    }
    Ok(rejected)
}

impl Sink for DynamoSink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        let reject = |reason: String| SinkError::Rejected(Rejection::of(result, reason));
        let object: Value = serde_json::from_str(&result.object).map_err(|e| reject(format!("not JSON: {e}")))?;
        let Value::Object(map) = object else { return Err(reject("not a JSON object".into())) };
        let mut item: HashMap<String, AttributeValue> = map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect();
        item.insert(self.spec.partition_key.clone(), AttributeValue::S(result.key.clone()));
        let sort = match self.spec.sort_by {
            SortBy::Start => result.start.0.div_euclid(1000),
            SortBy::WindowId => result.id,
        };
        item.insert(self.spec.sort_key.clone(), AttributeValue::N(sort.to_string()));
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(reject(format!("item is {size} bytes, over DynamoDB's {MAX_ITEM_BYTES}-byte limit")));
        }
        let pending = Pending { item, window: result.clone() };
        match self.slot.get(&(result.key.clone(), sort)) {
            Some(&i) => self.pending[i] = pending,
            None => {
                self.slot.insert((result.key.clone(), sort), self.pending.len());
                self.pending.push(pending);
            }
        }
        if self.pending.len() >= BATCH * self.spec.max_in_flight {
            let rejected = self.send_pending()?;
            if !rejected.is_empty() {
                return Err(SinkError::RejectedMany(rejected));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.send_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_exact_text() {
        let v: Value = serde_json::from_str(r#"{"average": 21.35000000000000000000000000000001, "n": 3, "big": 123456789012345678901234567890}"#).unwrap();
        let AttributeValue::M(m) = attribute(&v) else { panic!() };
        assert_eq!(m["average"], AttributeValue::N("21.35000000000000000000000000000001".into()));
        assert_eq!(m["n"], AttributeValue::N("3".into()));
        assert_eq!(m["big"], AttributeValue::N("123456789012345678901234567890".into()));
    }

    #[test]
    fn shapes_map_to_attribute_types() {
        let v: Value = serde_json::from_str(r#"{"s":"x","b":true,"z":null,"l":[1,"a"],"m":{"k":2}}"#).unwrap();
        let AttributeValue::M(m) = attribute(&v) else { panic!() };
        assert_eq!(m["s"], AttributeValue::S("x".into()));
        assert_eq!(m["b"], AttributeValue::Bool(true));
        assert_eq!(m["z"], AttributeValue::Null(true));
        assert_eq!(m["l"], AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::S("a".into())]));
        assert_eq!(m["m"], AttributeValue::M([("k".to_owned(), AttributeValue::N("2".into()))].into()));
    }

    #[test]
    fn auth_and_missing_table_errors_are_fatal_and_validation_is_per_item() {
        assert!(fatal("ResourceNotFoundException").unwrap().contains("does not exist"));
        for code in ["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "AccessDeniedException"] {
            assert!(fatal(code).is_some(), "{code}");
        }
        assert_eq!(fatal("ValidationException"), None);
        assert_eq!(fatal("ProvisionedThroughputExceededException"), None);
    }

    #[test]
    fn item_size_counts_names_and_values() {
        let item: HashMap<String, AttributeValue> = [("id".to_owned(), AttributeValue::S("x".repeat(MAX_ITEM_BYTES)))].into();
        assert!(item_size(&item) > MAX_ITEM_BYTES);
    }
}
