//! The DynamoDB client every part of weir uses (sink, checkpoints,
//! `weir produce`, `weir query`), the table check, and short error text.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus};

use crate::manifest::DynamoSinkSpec;
use crate::sink::SinkError;

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
