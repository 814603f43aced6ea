//! `weir query`: reads a DynamoDB table back by key and time range (seed 003
//! uses DynamoDB as a time-series store) and prints JSON lines or a table.

pub mod stats;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::Timestamp;

/// What to read.
#[derive(Debug, Clone)]
pub struct Query {
    /// The table.
    pub table: String,
    /// The partition key attribute and the key to read.
    pub partition_key: String,
    /// The key.
    pub key: String,
    /// The sort key attribute (window start, epoch milliseconds).
    pub sort_key: String,
    /// From this window start (inclusive).
    pub from: Option<Timestamp>,
    /// To this window start (exclusive).
    pub to: Option<Timestamp>,
    /// Endpoint override.
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
}

/// A DynamoDB attribute as JSON; numbers keep their text.
pub fn json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::from_str::<serde_json::Number>(n).map(Value::Number).unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(json).collect()),
        AttributeValue::M(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        other => Value::String(format!("{other:?}")),
    }
}

/// Runs the query; items in sort-key order, as JSON objects with sorted fields.
pub fn run(q: &Query) -> Result<Vec<BTreeMap<String, Value>>, anyhow::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::sink::dynamodb::client(q.endpoint.as_deref(), q.region.as_deref()).await;
        let ms = |t: Timestamp| AttributeValue::N(t.0.div_euclid(1000).to_string());
        let from = ms(q.from.unwrap_or(Timestamp(i64::MIN / 2)));
        let to = ms(q.to.unwrap_or(Timestamp(i64::MAX / 2)));
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = client
                .query()
                .table_name(&q.table)
                .key_condition_expression("#k = :k AND #s BETWEEN :from AND :to")
                .expression_attribute_names("#k", &q.partition_key)
                .expression_attribute_names("#s", &q.sort_key)
                .expression_attribute_values(":k", AttributeValue::S(q.key.clone()))
                .expression_attribute_values(":from", from.clone())
                .expression_attribute_values(":to", to.clone())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("query {}: {}", q.table, crate::sink::dynamodb::describe(&e)))?;
            for item in out.items.unwrap_or_default() {
                items.push(item.iter().map(|(k, v)| (k.clone(), json(v))).collect::<BTreeMap<_, _>>());
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        // BETWEEN is inclusive; the upper bound is meant exclusive.
        if let Some(to) = q.to {
            let limit = to.0.div_euclid(1000);
            items.retain(|i| i.get(&q.sort_key).and_then(Value::as_i64).is_none_or(|s| s < limit));
        }
        Ok(items)
    })
}

/// Items as an aligned text table.
pub fn table(items: &[BTreeMap<String, Value>]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        for k in item.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let cell = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let widths: Vec<usize> = columns.iter().map(|c| items.iter().map(|i| cell(i.get(c)).len()).max().unwrap_or(0).max(c.len())).collect();
    let mut out = String::new();
    let row = |cells: Vec<String>| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned() + "\n";
    out.push_str(&row(columns.clone()));
    for item in items {
        out.push_str(&row(columns.iter().map(|c| cell(item.get(c))).collect()));
    }
    out
}
