use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A duration written for people: `"5s"`, `"250ms"`, `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|err| format!("`{text}` is not a duration ({err}); write it like \"5s\", \"250ms\" or \"1h\""))
    }
}

impl HumanDuration {
    /// Whole microseconds, saturating.
    pub fn micros(self) -> i64 {
        i64::try_from(self.0.as_micros()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes written for people: `"64MiB"`, `"512KiB"`, `"1GB"`, or a
/// bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Integer(n) if n > 0 => Ok(ByteSize(n as u64)),
            toml::Value::String(text) => parse_size(&text).map(ByteSize),
            other => Err(format!("`{other}` is not a size; write it like \"64MiB\"")),
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size; write it like \"64MiB\""))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("`{text}`: unknown size unit `{other}` (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    number.checked_mul(scale).filter(|&n| n > 0).ok_or_else(|| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(HumanDuration::try_from("5s".to_owned()).unwrap().micros(), 5_000_000);
        assert_eq!(HumanDuration::try_from("1h".to_owned()).unwrap().micros(), 3_600_000_000);
        let err = HumanDuration::try_from("five".to_owned()).unwrap_err();
        assert!(err.contains("`five` is not a duration"), "{err}");
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert!(parse_size("12 parsecs").unwrap_err().contains("unknown size unit"));
    }
}
