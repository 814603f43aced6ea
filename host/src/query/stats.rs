//! Seed 003's question: per sensor, the count, mean, min and max of a
//! reading over a time range. With keys it asks DynamoDB a Query per key
//! (the time range on the sort key); with `scan` it reads the whole table,
//! showing progress on stderr as it goes. Only the attributes needed are
//! read (a projection).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::Timestamp;
use crate::sink::dynamodb::{client, describe};

/// What to summarise.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    /// The table.
    pub table: String,
    /// The sensor id attribute (the partition key).
    pub partition_key: String,
    /// The time attribute (the sort key, epoch milliseconds).
    pub sort_key: String,
    /// The reading attribute summarised.
    pub value_field: String,
    /// The sensors to read by Query; empty with `scan`.
    pub keys: Vec<String>,
    /// Read every sensor with a Scan.
    pub scan: bool,
    /// From this time (inclusive).
    pub from: Option<Timestamp>,
    /// To this time (exclusive).
    pub to: Option<Timestamp>,
    /// Endpoint override.
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
}

/// One sensor's summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyStats {
    /// The sensor.
    pub key: String,
    /// Readings in the range.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

#[derive(Debug, Default)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// Runs the query: one summary per sensor that has readings in the
/// range, by sensor name.
pub fn run(q: &StatsQuery) -> Result<Vec<KeyStats>, anyhow::Error> {
    if q.scan == !q.keys.is_empty() {
        anyhow::bail!("name the sensors (--key, Query per sensor) or ask for --scan (reads the whole table), not both or neither");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let accs = runtime.block_on(async {
        let client = client(q.endpoint.as_deref(), q.region.as_deref()).await;
        let ms = |t: Timestamp| AttributeValue::N(t.0.div_euclid(1000).to_string());
        let from = ms(q.from.unwrap_or(Timestamp(i64::MIN / 2)));
        // BETWEEN is inclusive; the upper bound is exclusive.
        let to = ms(q.to.map_or(Timestamp(i64::MAX / 2), |t| t.plus(-1000)));
        let mut accs: BTreeMap<String, Acc> = BTreeMap::new();
        let mut progress = Progress::new(&q.table, q.scan);
        let value = |item: &HashMap<String, AttributeValue>| -> Option<f64> {
            match item.get(&q.value_field)? {
                AttributeValue::N(n) => n.parse().ok(),
                _ => None,
            }
        };
        if q.scan {
            let mut start = None;
            loop {
                let out = client
                    .scan()
                    .table_name(&q.table)
                    .filter_expression("#s BETWEEN :from AND :to")
                    .projection_expression("#k, #v")
                    .expression_attribute_names("#k", &q.partition_key)
                    .expression_attribute_names("#s", &q.sort_key)
                    .expression_attribute_names("#v", &q.value_field)
                    .expression_attribute_values(":from", from.clone())
                    .expression_attribute_values(":to", to.clone())
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("scan {}: {}", q.table, describe(&e)))?;
                let items = out.items.unwrap_or_default();
                progress.page(out.scanned_count as u64, items.len() as u64);
                for item in &items {
                    if let (Some(AttributeValue::S(key)), Some(v)) = (item.get(&q.partition_key), value(item)) {
                        accs.entry(key.clone()).or_default().add(v);
                    }
                }
                match out.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        } else {
            for key in &q.keys {
                let mut start = None;
                loop {
                    let out = client
                        .query()
                        .table_name(&q.table)
                        .key_condition_expression("#k = :k AND #s BETWEEN :from AND :to")
                        .projection_expression("#v")
                        .expression_attribute_names("#k", &q.partition_key)
                        .expression_attribute_names("#s", &q.sort_key)
                        .expression_attribute_names("#v", &q.value_field)
                        .expression_attribute_values(":k", AttributeValue::S(key.clone()))
                        .expression_attribute_values(":from", from.clone())
                        .expression_attribute_values(":to", to.clone())
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| anyhow::anyhow!("query {} for {key}: {}", q.table, describe(&e)))?;
                    let items = out.items.unwrap_or_default();
                    progress.page(out.scanned_count as u64, items.len() as u64);
                    for item in &items {
                        if let Some(v) = value(item) {
                            accs.entry(key.clone()).or_default().add(v);
                        }
                    }
                    match out.last_evaluated_key {
                        Some(k) => start = Some(k),
                        None => break,
                    }
                }
            }
        }
        progress.done();
        Ok::<_, anyhow::Error>(accs)
    })?;
    Ok(accs.into_iter().map(|(key, a)| KeyStats { key, count: a.count, mean: a.sum / a.count as f64, min: a.min, max: a.max }).collect())
}

// Progress on stderr, once a second, for reads that take long.
struct Progress<'a> {
    table: &'a str,
    what: &'static str,
    started: Instant,
    last: Instant,
    read: u64,
    matched: u64,
    pages: u64,
}

impl<'a> Progress<'a> {
    fn new(table: &'a str, scan: bool) -> Self {
        Progress { table, what: if scan { "scan" } else { "query" }, started: Instant::now(), last: Instant::now(), read: 0, matched: 0, pages: 0 }
    }

    fn page(&mut self, read: u64, matched: u64) {
        (self.read, self.matched, self.pages) = (self.read + read, self.matched + matched, self.pages + 1);
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            eprintln!("{} {}: {} items read, {} in range, {} pages, {:.0} items/s", self.what, self.table, self.read, self.matched, self.pages, self.read as f64 / self.started.elapsed().as_secs_f64());
        }
    }

    fn done(&self) {
        eprintln!("{} {}: {} items read, {} in range, {} pages, in {:.2?}", self.what, self.table, self.read, self.matched, self.pages, self.started.elapsed());
    }
}
