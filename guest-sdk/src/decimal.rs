use std::fmt;

use serde::{Serialize, Serializer};

use crate::Error;

/// A JSON number written with exactly the given decimal text.
///
/// Use it in a format stage's output where digits matter: the host stores
/// numbers in DynamoDB as `N` with their text unchanged, so `Decimal` is how a
/// plugin says "this many digits, no float rounding".
///
/// ```
/// use weir_guest_sdk::Decimal;
/// let avg = Decimal::from_f64(21.0 / 2.0).unwrap();
/// assert_eq!(serde_json::to_string(&avg).unwrap(), "10.5");
/// assert_eq!(Decimal::from_f64(20.0).unwrap().as_str(), "20.0");
/// assert_eq!(Decimal::parse("0.1000").unwrap().as_str(), "0.1000");
/// assert!(Decimal::parse("1,5").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(String);

impl Decimal {
    /// The shortest text that reads back as `value`, as Python's `str(float)`
    /// writes it for everyday magnitudes (`20.0`, `0.1`, `21.35`). `None` for
    /// NaN and infinities, which JSON cannot hold.
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let mut text = format!("{value}");
        if !text.contains(['.', 'e', 'E']) {
            text.push_str(".0");
        }
        Some(Decimal(text))
    }

    /// Takes decimal text as it is, after checking it is a JSON number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let valid = serde_json::from_str::<serde_json::Number>(text).is_ok() && !text.trim().is_empty();
        if valid && text.trim() == text { Ok(Decimal(text.to_owned())) } else { Err(Error::msg(format!("`{text}` is not a decimal number"))) }
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<i64> for Decimal {
    fn from(value: i64) -> Self {
        Decimal(value.to_string())
    }
}

impl From<u64> for Decimal {
    fn from(value: u64) -> Self {
        Decimal(value.to_string())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A RawValue is written verbatim by serde_json, keeping every digit.
        let raw = serde_json::value::RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}
