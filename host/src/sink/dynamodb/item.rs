//! A window result as a DynamoDB item: the format stage's JSON object
//! mapped attribute by attribute, measured as DynamoDB measures it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

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
    fn item_size_counts_names_and_values() {
        let item: HashMap<String, AttributeValue> = [("id".to_owned(), AttributeValue::S("x".repeat(MAX_ITEM_BYTES)))].into();
        assert!(item_size(&item) > MAX_ITEM_BYTES);
    }
}
