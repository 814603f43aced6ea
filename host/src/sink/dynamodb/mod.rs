//! DynamoDB out: each window result becomes an item keyed by what makes the
//! window unique — (window key, window start), or (window key, window id)
//! for collect windows, whose starts can repeat — so a replay after a crash
//! overwrites instead of adding.
//!
//! The pipeline's thread only turns results into items ([`item`]) and hands
//! them off in chunks of 25; the [`writer`] thread keeps up to
//! `max_in_flight` BatchWriteItem calls going ([`batch`]: retries,
//! splitting, refusals) with a bounded queue that makes the pipeline wait
//! when DynamoDB falls behind. A chunk is handed off when full, or at once
//! when a call is free, so a closed window reaches DynamoDB about one round
//! trip after it closes; a flush (before each checkpoint) waits for all.

mod batch;
mod item;
mod table;
mod writer;

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

pub use item::{MAX_ITEM_BYTES, attribute, item_size};
pub use table::{client, describe, ensure_table};

use super::{Rejection, Sink, SinkError, WindowResult};
use crate::manifest::{DynamoSinkSpec, SortBy};
use batch::{BATCH, Pending};
use writer::Writer;

/// The DynamoDB sink.
pub struct DynamoSink {
    spec: DynamoSinkSpec,
    /// Items not yet handed to the writer (fewer than a batch).
    pending: Vec<Pending>,
    /// Index into `pending` by (key, sort value), so one batch never holds the
    /// same item twice (DynamoDB refuses that).
    slot: HashMap<(String, i64), usize>,
    writer: Writer,
}

impl DynamoSink {
    /// Connects with the standard credential chain, `region` and
    /// `endpoint` overrides, creates the table if asked and missing, and
    /// starts the writer thread.
    pub fn connect(spec: &DynamoSinkSpec) -> Result<Self, SinkError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| SinkError::Io { target: "tokio runtime".into(), source })?;
        let client = runtime.block_on(client(spec.endpoint.as_deref(), spec.region.as_deref()));
        runtime.block_on(ensure_table(&client, spec))?;
        let writer = Writer::start(runtime, client, spec.table.clone(), spec.max_in_flight)?;
        Ok(DynamoSink { spec: spec.clone(), pending: Vec::new(), slot: HashMap::new(), writer })
    }

    // Hands what is pending to the writer; returns what DynamoDB refused
    // since the last look.
    fn hand_off(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.slot.clear();
        self.writer.send(std::mem::take(&mut self.pending))
    }
}

fn many(rejected: Vec<Rejection>) -> Result<(), SinkError> {
    if rejected.is_empty() { Ok(()) } else { Err(SinkError::RejectedMany(rejected)) }
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
        let at = (result.key.clone(), sort);
        let pending = Pending { item, window: result.clone(), at: at.clone(), closed_at: result.closed_at.or_else(|| Some(Instant::now())) };
        match self.slot.get(&at) {
            Some(&i) => self.pending[i] = pending,
            None => {
                self.slot.insert(at, self.pending.len());
                self.pending.push(pending);
            }
        }
        if self.pending.len() >= BATCH {
            return many(self.hand_off()?);
        }
        many(self.writer.take()?)
    }

    fn poll(&mut self) -> Result<Vec<Rejection>, SinkError> {
        if !self.pending.is_empty() && self.writer.idle() {
            return self.hand_off();
        }
        self.writer.take()
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        let mut rejected = self.hand_off()?;
        rejected.append(&mut self.writer.flush()?);
        Ok(rejected)
    }
}
