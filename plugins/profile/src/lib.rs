//! A per-column profile of every field of the records in each key's window
//! — seed 001's ydata-profiling report per device and hour, as a fold and
//! format: for each column the count, missing, distinct values, mean, std,
//! min, quartiles, max and a 10-bin histogram (numbers); the true/false
//! counts (booleans); the most common values (text). `weir report` turns
//! the window objects into an HTML page with a chart per column.
//!
//! Config: `columns`, each field's name and type (`"float"`, `"bool"` or
//! `"text"`); by default seed 001's telemetry columns. A field may be
//! missing from a record (it counts as missing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_guest_sdk::{Error, FieldType, FoldStage, FormatStage, Identity, Plugin, Row, Schema, Window};

/// Values kept per column and window; past it, every other one is dropped
/// (the statistics become those of an even sample).
pub const MAX_VALUES: usize = 20_000;
/// Distinct text values counted per column and window.
pub const MAX_TEXTS: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    columns: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        let floats = ["co", "humidity", "lpg", "smoke", "temp"].map(|c| (c.to_owned(), "float".to_owned()));
        let bools = ["light", "motion"].map(|c| (c.to_owned(), "bool".to_owned()));
        Config { columns: floats.into_iter().chain(bools).collect() }
    }
}

// One column's value in a row, read before any is kept.
enum Cell<'a> {
    Number(f64),
    Text(&'a str),
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Float,
    Bool,
    Text,
}

pub struct Profile {
    columns: Vec<(String, Kind)>,
}

impl Plugin for Profile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        if config.columns.is_empty() {
            return Err(Error::msg("`columns` must name at least one field"));
        }
        let columns = config
            .columns
            .into_iter()
            .map(|(name, ty)| match ty.as_str() {
                "float" => Ok((name, Kind::Float)),
                "bool" => Ok((name, Kind::Bool)),
                "text" => Ok((name, Kind::Text)),
                other => Err(Error::msg(format!("column `{name}`: type `{other}` is not float, bool or text"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Profile { columns })
    }
}

/// One column's values in a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnAcc {
    pub count: u64,
    pub missing: u64,
    /// Numbers (booleans as 0 and 1), up to [`MAX_VALUES`].
    pub values: Vec<f64>,
    /// Kept one in `stride` once the cap was met.
    pub stride: u64,
    /// Text values and how often each came, up to [`MAX_TEXTS`] values.
    pub texts: BTreeMap<String, u64>,
}

/// The accumulator: every column's values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    pub rows: u64,
    pub columns: BTreeMap<String, ColumnAcc>,
}

impl ColumnAcc {
    fn push(&mut self, v: f64) {
        self.count += 1;
        let stride = self.stride.max(1);
        if self.count % stride == 0 {
            self.values.push(v);
        }
        if self.values.len() > MAX_VALUES {
            // Keep an even sample: every other value, and half as many from now on.
            self.values = self.values.iter().step_by(2).copied().collect();
            self.stride = stride * 2;
        }
    }

    fn push_text(&mut self, t: &str) {
        self.count += 1;
        if let Some(n) = self.texts.get_mut(t) {
            *n += 1;
        } else if self.texts.len() < MAX_TEXTS {
            self.texts.insert(t.to_owned(), 1);
        }
    }

    fn merge(&mut self, other: ColumnAcc) {
        self.count += other.count;
        self.missing += other.missing;
        self.values.extend(other.values);
        self.stride = self.stride.max(other.stride);
        while self.values.len() > MAX_VALUES {
            self.values = self.values.iter().step_by(2).copied().collect();
            self.stride = self.stride.max(1) * 2;
        }
        for (t, n) in other.texts {
            if self.texts.len() < MAX_TEXTS || self.texts.contains_key(&t) {
                *self.texts.entry(t).or_default() += n;
            }
        }
    }
}

fn identity() -> Identity {
    Identity::new("profile", 1)
}

impl FoldStage for Profile {
    type Acc = Acc;

    fn reads(&self) -> Schema {
        self.columns.iter().fold(Schema::new("profile", 1), |s, (name, kind)| {
            s.optional(
                name,
                match kind {
                    Kind::Float => FieldType::Float,
                    Kind::Bool => FieldType::Bool,
                    Kind::Text => FieldType::Text,
                },
            )
        })
    }

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn init(&self) -> Acc {
        Acc::default()
    }

    fn fold(&self, acc: &mut Acc, event: &Row<'_>) -> Result<(), Error> {
        // Read every column first: a row that fails changes nothing.
        let mut read: Vec<Option<Cell<'_>>> = Vec::with_capacity(self.columns.len());
        for (name, kind) in &self.columns {
            read.push(match (event.is_missing(name), kind) {
                (true, _) => None,
                (false, Kind::Float) => Some(Cell::Number(event.float(name)?)),
                (false, Kind::Bool) => Some(Cell::Number(if event.bool(name)? { 1.0 } else { 0.0 })),
                (false, Kind::Text) => Some(Cell::Text(event.text(name)?)),
            });
        }
        acc.rows += 1;
        for ((name, _), cell) in self.columns.iter().zip(read) {
            let column = match acc.columns.get_mut(name) {
                Some(column) => column,
                None => acc.columns.entry(name.clone()).or_default(),
            };
            match cell {
                None => column.missing += 1,
                Some(Cell::Number(v)) => column.push(v),
                Some(Cell::Text(t)) => column.push_text(t),
            }
        }
        Ok(())
    }

    fn merge(&self, into: &mut Acc, from: Acc) -> Result<(), Error> {
        into.rows += from.rows;
        for (name, column) in from.columns {
            into.columns.entry(name).or_default().merge(column);
        }
        Ok(())
    }
}

impl FormatStage for Profile {
    type Acc = Acc;
    type Output = Value;

    fn accumulator(&self) -> Identity {
        identity()
    }

    fn format(&self, window: &Window, acc: Acc) -> Result<Value, Error> {
        let mut columns = serde_json::Map::new();
        for (name, kind) in &self.columns {
            let column = acc.columns.get(name).cloned().unwrap_or_default();
            columns.insert(name.clone(), describe(*kind, &column));
        }
        Ok(json!({
            "key": window.key,
            "start": window.start.to_rfc3339(),
            "end": window.end.to_rfc3339(),
            "rows": acc.rows,
            "columns": columns,
        }))
    }
}

/// A column's profile as JSON.
pub fn describe(kind: Kind, c: &ColumnAcc) -> Value {
    match kind {
        Kind::Text => {
            let mut top: Vec<(&String, &u64)> = c.texts.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            json!({
                "type": "text", "count": c.count, "missing": c.missing, "distinct": c.texts.len(),
                "top": top.iter().take(5).map(|(t, n)| json!([t, n])).collect::<Vec<_>>(),
            })
        }
        Kind::Bool => {
            let trues = c.values.iter().filter(|v| **v > 0.5).count() as u64 * c.stride.max(1);
            let trues = trues.min(c.count);
            json!({ "type": "bool", "count": c.count, "missing": c.missing, "true": trues, "false": c.count - trues })
        }
        Kind::Float => {
            let mut v = c.values.clone();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return json!({ "type": "float", "count": c.count, "missing": c.missing });
            }
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = if v.len() > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
            let mut distinct = v.clone();
            distinct.dedup();
            let (min, max) = (v[0], v[v.len() - 1]);
            json!({
                "type": "float", "count": c.count, "missing": c.missing, "distinct": distinct.len(),
                "mean": mean, "std": std, "min": min, "p25": quantile(&v, 0.25), "p50": quantile(&v, 0.5), "p75": quantile(&v, 0.75), "max": max,
                "histogram": histogram(&v, 10),
            })
        }
    }
}

/// The `q` quantile of sorted values, interpolated linearly (pandas' default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

/// `bins` equal-width bins from min to max: edges (bins + 1) and counts;
/// the last bin holds the max.
pub fn histogram(sorted: &[f64], bins: usize) -> Value {
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let width = (max - min) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &x in sorted {
        let i = if width > 0.0 { (((x - min) / width) as usize).min(bins - 1) } else { 0 };
        counts[i] += 1;
    }
    let edges: Vec<f64> = (0..=bins).map(|i| if i == bins { max } else { min + width * i as f64 }).collect();
    json!({ "edges": edges, "counts": counts })
}

weir_guest_sdk::export_plugin!(fold: Profile, format: Profile);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate_like_pandas() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!((quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75)), (1.75, 2.5, 3.25));
    }

    #[test]
    fn the_histogram_covers_min_to_max() {
        let h = histogram(&[0.0, 1.0, 2.0, 10.0], 10);
        assert_eq!(h["counts"], json!([1, 1, 1, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(h["edges"][0], json!(0.0));
        assert_eq!(h["edges"][10], json!(10.0));
        assert_eq!(histogram(&[5.0, 5.0], 10)["counts"][0], json!(2));
    }

    #[test]
    fn a_column_keeps_an_even_sample_past_the_cap() {
        let mut c = ColumnAcc::default();
        for i in 0..(MAX_VALUES as u64 * 3) {
            c.push(i as f64);
        }
        assert_eq!(c.count, MAX_VALUES as u64 * 3);
        assert!(c.values.len() <= MAX_VALUES && c.values.len() > MAX_VALUES / 4, "{}", c.values.len());
        let mean = c.values.iter().sum::<f64>() / c.values.len() as f64;
        assert!((mean / (MAX_VALUES as f64 * 1.5) - 1.0).abs() < 0.01, "the sample's mean {mean} is the data's");
    }

    #[test]
    fn merged_columns_add_up() {
        let (mut a, mut b) = (ColumnAcc::default(), ColumnAcc::default());
        a.push(1.0);
        b.push(3.0);
        b.missing = 2;
        a.merge(b);
        assert_eq!((a.count, a.missing, a.values.clone()), (2, 2, vec![1.0, 3.0]));
        let p = describe(Kind::Float, &a);
        assert_eq!((p["mean"].as_f64(), p["min"].as_f64(), p["max"].as_f64()), (Some(2.0), Some(1.0), Some(3.0)));
    }
}
