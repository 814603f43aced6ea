//! One BatchWriteItem of up to 25 items, retried until DynamoDB takes
//! them: UnprocessedItems and throttling with backoff and jitter, a batch
//! refused for one bad item split into PutItems so only that item is
//! refused, and errors no retry helps (no table, bad credentials) fatal.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use rand::Rng;

use super::describe;
use crate::sink::{Rejection, SinkError, WindowResult};

/// Items in one BatchWriteItem (DynamoDB's limit).
pub const BATCH: usize = 25;
/// How long the sink keeps retrying an unreachable or throttling DynamoDB
/// before the pipeline stops (nothing is lost either way: offsets wait).
const OUTAGE_LIMIT: Duration = Duration::from_secs(600);

/// An item waiting to be written, with the window it came from (to
/// dead-letter it if refused) and when that window closed.
pub struct Pending {
    /// The item.
    pub item: HashMap<String, AttributeValue>,
    /// The window result it was made from.
    pub window: WindowResult,
    /// The item's key in the table (partition key, sort value).
    pub at: (String, i64),
    /// When the window closed, if the pipeline said.
    pub closed_at: Option<Instant>,
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

/// Writes `chunk` (at most [`BATCH`] items, no two with the same key),
/// retrying until DynamoDB has taken every item or refused it; returns the
/// refused ones (each with its reason), or the error that must stop the
/// pipeline.
pub async fn write_batch(client: &Client, table: &str, chunk: &[Pending]) -> Result<Vec<Rejection>, SinkError> {
    let table = table.to_owned();
    let mut requests: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
    for p in chunk {
        let put = PutRequest::builder().set_item(Some(p.item.clone())).build().expect("item set");
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    let mut attempt = 0;
    let started = Instant::now();
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
                    return write_each(client, &table, requests, chunk).await;
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
        let started = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_missing_table_errors_are_fatal_and_validation_is_per_item() {
        assert!(fatal("ResourceNotFoundException").unwrap().contains("does not exist"));
        for code in ["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "AccessDeniedException"] {
            assert!(fatal(code).is_some(), "{code}");
        }
        assert_eq!(fatal("ValidationException"), None);
        assert_eq!(fatal("ProvisionedThroughputExceededException"), None);
    }
}
