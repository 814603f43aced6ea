//! Seed 003's mock sensors: random-walk readings written straight into a
//! DynamoDB table (`SensorId`, `CurrentTime` in epoch milliseconds,
//! `Temperature`, as the seed's table has them), 25 items a request, with
//! unprocessed items retried and progress on stderr.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::readings;
use crate::manifest::{DynamoSinkSpec, SortBy};
use crate::sink::dynamodb::{client, describe, ensure_table};

/// Where and what to write.
#[derive(Debug, Clone)]
pub struct Target {
    /// The table.
    pub table: String,
    /// The sensor id attribute (string, the partition key).
    pub partition_key: String,
    /// The time attribute (number, epoch milliseconds, the sort key).
    pub sort_key: String,
    /// The reading attribute (number).
    pub value_field: String,
    /// Create the table when it is missing.
    pub create_table: bool,
    /// Endpoint override (DynamoDB Local).
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
}

/// Writes `count` readings of `sensors` sensors (seeded; `rate` a second,
/// 0: as fast as DynamoDB takes them, timestamps a second apart) into the
/// table; returns how many were written.
pub fn produce(target: &Target, sensors: usize, count: u64, rate: u64, seed: u64) -> Result<u64, anyhow::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = client(target.endpoint.as_deref(), target.region.as_deref()).await;
        let spec = DynamoSinkSpec {
            table: target.table.clone(),
            partition_key: target.partition_key.clone(),
            sort_key: target.sort_key.clone(),
            sort_by: SortBy::Start,
            create_table: target.create_table,
            endpoint: target.endpoint.clone(),
            region: target.region.clone(),
            max_in_flight: 1,
        };
        ensure_table(&client, &spec).await?;
        let started = Instant::now();
        let mut last_report = Instant::now();
        let mut written = 0u64;
        let mut batch: Vec<WriteRequest> = Vec::with_capacity(25);
        let mut all = readings(sensors, count, rate, seed, crate::Timestamp::now()).peekable();
        while all.peek().is_some() {
            batch.clear();
            for r in all.by_ref().take(25) {
                let item = HashMap::from([
                    (target.partition_key.clone(), AttributeValue::S(r.sensor)),
                    (target.sort_key.clone(), AttributeValue::N((r.time.0.div_euclid(1000)).to_string())),
                    (target.value_field.clone(), AttributeValue::N(format!("{:.2}", r.value))),
                ]);
                batch.push(WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build()?).build());
            }
            written += write(&client, &target.table, batch.clone()).await? as u64;
            if rate > 0 {
                let due = Duration::from_secs_f64(written as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                eprintln!("produce: {written} of {count} readings to {} ({:.0}/s)", target.table, written as f64 / started.elapsed().as_secs_f64());
                last_report = Instant::now();
            }
        }
        eprintln!("produce: {written} readings of {} sensors to {} in {:.2?}", sensors.max(1), target.table, started.elapsed());
        Ok(written)
    })
}

// One BatchWriteItem, with what DynamoDB leaves unprocessed sent again
// (backing off) until all is in; returns how many items went in.
async fn write(client: &aws_sdk_dynamodb::Client, table: &str, requests: Vec<WriteRequest>) -> Result<usize, anyhow::Error> {
    let count = requests.len();
    let mut pending = requests;
    for attempt in 0u32..20 {
        let out = client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot write to {table}: {}", describe(&e)))?;
        pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
        if pending.is_empty() {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
    }
    anyhow::bail!("{table} left {} of {count} items unprocessed after 20 attempts", pending.len())
}
