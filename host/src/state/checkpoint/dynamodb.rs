//! Checkpoints in a DynamoDB table, for members of one consumer group on
//! several machines. Chosen over a compacted Kafka topic because DynamoDB's
//! conditional writes fence a former owner in the store itself, on every
//! write; a topic would need the transactional producer's fencing, which
//! the broker used here does not promise.
//!
//! Per partition: a head item (`part = "head"`) with the epoch, the owner
//! and which chunks hold the current snapshot, and the snapshot's bytes in
//! chunk items (`part = "chunk/<epoch>/<seq>/<i>"`, under DynamoDB's item
//! limit). A write puts new chunks first, then switches the head to them
//! with a condition on the epoch, so a reader sees the old snapshot or the
//! new one whole, and a fenced writer changes nothing anyone reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue, ScalarAttributeType, TableStatus};
use sha2::{Digest, Sha256};

use super::{CheckpointError, CheckpointStore, Claim, Owner, PartitionId, PartitionSnapshot};
use crate::manifest::DynamoCheckpointSpec;

/// Bytes per chunk item, well under DynamoDB's 400 KB item limit.
const CHUNK: usize = 300 * 1024;

/// Checkpoints in a DynamoDB table every member reaches.
pub struct DynamoCheckpoints {
    table: String,
    prefix: String,
    client: Client,
    runtime: tokio::runtime::Runtime,
    seq: AtomicU64,
}

impl DynamoCheckpoints {
    /// Connects, creating the table when asked and missing. Items of this
    /// pipeline are keyed under `prefix` (the group id).
    pub fn connect(spec: &DynamoCheckpointSpec, prefix: &str) -> Result<Self, CheckpointError> {
        let err = |message: String| CheckpointError::Dynamo { table: spec.table.clone(), message };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err(e.to_string()))?;
        let client = runtime.block_on(crate::sink::dynamodb::client(spec.endpoint.as_deref(), spec.region.as_deref()));
        let store = DynamoCheckpoints { table: spec.table.clone(), prefix: prefix.to_owned(), client, runtime, seq: AtomicU64::new(0) };
        store.runtime.block_on(store.ensure_table(spec.create_table))?;
        Ok(store)
    }

    fn err(&self, message: String) -> CheckpointError {
        CheckpointError::Dynamo { table: self.table.clone(), message }
    }

    fn key(&self, id: &PartitionId) -> AttributeValue {
        AttributeValue::S(format!("{}/{}/{}", self.prefix, id.topic, id.partition))
    }

    async fn ensure_table(&self, create: bool) -> Result<(), CheckpointError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                if !create {
                    return Err(self.err("the table does not exist; create it, or set checkpoint.create_table = true".into()));
                }
            }
            Err(e) => return Err(self.err(format!("cannot reach DynamoDB: {}", crate::sink::dynamodb::describe(&e)))),
        }
        tracing::info!(table = %self.table, "creating the checkpoint table");
        let attr = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("complete");
        let key = |name: &str, t| KeySchemaElement::builder().attribute_name(name).key_type(t).build().expect("complete");
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr("partition"))
            .attribute_definitions(attr("part"))
            .key_schema(key("partition", KeyType::Hash))
            .key_schema(key("part", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created
            && !e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception())
        {
            return Err(self.err(format!("cannot create it: {}", crate::sink::dynamodb::describe(&e))));
        }
        for _ in 0..120 {
            let status = self.client.describe_table().table_name(&self.table).send().await.ok().and_then(|d| d.table).and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(self.err("created, but not ACTIVE within 60 s".into()))
    }

    async fn head(&self, id: &PartitionId) -> Result<Option<HashMap<String, AttributeValue>>, CheckpointError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("partition", self.key(id))
            .key("part", AttributeValue::S("head".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(format!("reading the head of {id}: {}", crate::sink::dynamodb::describe(&e))))?;
        Ok(out.item)
    }

    fn claim_of(&self, id: &PartitionId, head: &HashMap<String, AttributeValue>) -> Result<Claim, CheckpointError> {
        let corrupt = |detail: &str| CheckpointError::Corrupt { at: format!("table {} item {id}", self.table), detail: detail.to_owned() };
        let epoch = head.get("epoch").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).ok_or_else(|| corrupt("no epoch"))?;
        let owner = head.get("owner").and_then(|v| v.as_s().ok()).and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| corrupt("no owner"))?;
        Ok(Claim { epoch, owner })
    }
}

impl CheckpointStore for DynamoCheckpoints {
    fn claim(&self, id: &PartitionId, owner: &Owner) -> Result<Claim, CheckpointError> {
        self.runtime.block_on(async {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("partition", self.key(id))
                .key("part", AttributeValue::S("head".into()))
                .update_expression("SET epoch = if_not_exists(epoch, :zero) + :one, #owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":owner", AttributeValue::S(serde_json::to_string(owner).expect("an owner serializes")))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(|e| self.err(format!("claiming {id}: {}", crate::sink::dynamodb::describe(&e))))?;
            self.claim_of(id, &out.attributes.unwrap_or_default())
        })
    }

    fn read(&self, id: &PartitionId) -> Result<Option<PartitionSnapshot>, CheckpointError> {
        self.runtime.block_on(async {
            let Some(head) = self.head(id).await? else { return Ok(None) };
            let corrupt = |detail: String| CheckpointError::Corrupt { at: format!("table {} item {id}", self.table), detail };
            let (Some(chunks), Some(parts), Some(sha)) = (
                head.get("chunks").and_then(|v| v.as_s().ok()),
                head.get("parts").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<usize>().ok()),
                head.get("sha256").and_then(|v| v.as_s().ok()),
            ) else {
                return Ok(None); // claimed, never written
            };
            let mut bytes = Vec::new();
            for i in 0..parts {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("partition", self.key(id))
                    .key("part", AttributeValue::S(format!("{chunks}/{i}")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.err(format!("reading {id} chunk {i}: {}", crate::sink::dynamodb::describe(&e))))?;
                let data = out.item.and_then(|mut item| item.remove("data")).and_then(|v| v.as_b().ok().cloned());
                bytes.extend_from_slice(data.ok_or_else(|| corrupt(format!("chunk {i} of {parts} is missing")))?.as_ref());
            }
            if hex::encode(Sha256::digest(&bytes)) != *sha {
                return Err(corrupt("the chunks do not match the head's SHA-256".into()));
            }
            PartitionSnapshot::decode(&bytes).map(Some).map_err(corrupt)
        })
    }

    fn write(&self, id: &PartitionId, claim: &Claim, snapshot: &PartitionSnapshot) -> Result<(), CheckpointError> {
        let bytes = snapshot.encode();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let chunks = format!("chunk/{}/{}/{seq}", claim.epoch, std::process::id());
        self.runtime.block_on(async {
            let old = self.head(id).await?.and_then(|h| Some((h.get("chunks")?.as_s().ok()?.clone(), h.get("parts")?.as_n().ok()?.parse::<usize>().ok()?)));
            let parts: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(CHUNK).collect() };
            for (i, part) in parts.iter().enumerate() {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("partition", self.key(id))
                    .item("part", AttributeValue::S(format!("{chunks}/{i}")))
                    .item("data", AttributeValue::B(Blob::new(part.to_vec())))
                    .send()
                    .await
                    .map_err(|e| self.err(format!("writing {id} chunk {i}: {}", crate::sink::dynamodb::describe(&e))))?;
            }
            let switched = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("partition", self.key(id))
                .key("part", AttributeValue::S("head".into()))
                .update_expression("SET chunks = :chunks, parts = :parts, sha256 = :sha")
                .condition_expression("epoch = :epoch")
                .expression_attribute_values(":chunks", AttributeValue::S(chunks.clone()))
                .expression_attribute_values(":parts", AttributeValue::N(parts.len().to_string()))
                .expression_attribute_values(":sha", AttributeValue::S(hex::encode(Sha256::digest(&bytes))))
                .expression_attribute_values(":epoch", AttributeValue::N(claim.epoch.to_string()))
                .send()
                .await;
            let (stale, fenced) = match switched {
                Ok(_) => (old, None),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    let current = match self.head(id).await? {
                        Some(head) => self.claim_of(id, &head)?,
                        None => Claim { epoch: 0, owner: Owner { member: "nobody".into(), generation: 0, process: String::new() } },
                    };
                    let err = CheckpointError::Fenced {
                        partition: id.clone(),
                        mine: claim.owner.clone(),
                        mine_epoch: claim.epoch,
                        current: current.owner,
                        current_epoch: current.epoch,
                    };
                    (Some((chunks.clone(), parts.len())), Some(err))
                }
                Err(e) => return Err(self.err(format!("switching {id} to its new checkpoint: {}", crate::sink::dynamodb::describe(&e)))),
            };
            // Chunks nobody reads any more; a failure here leaves garbage, not harm.
            if let Some((prefix, count)) = stale {
                for i in 0..count {
                    let _ = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .key("partition", self.key(id))
                        .key("part", AttributeValue::S(format!("{prefix}/{i}")))
                        .send()
                        .await;
                }
            }
            fenced.map_or(Ok(()), Err)
        })
    }

    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }
}
