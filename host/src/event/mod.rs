//! Events as contract 0.2 carries them (`docs/contract-0.2.md`): a batch is
//! a set of named, typed columns, one entry per event, so any stage in any
//! language reads the fields it needs and the host can key and time events
//! by field without a plugin call.

mod json;
mod schema;

pub use json::{Decoded, JsonDecoder};
pub use schema::{FieldSpec, FieldType, Identity, Mismatch, Schema};

use crate::Timestamp;

/// One field's values across a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Whole numbers.
    Ints(Vec<i64>),
    /// Floating-point numbers.
    Floats(Vec<f64>),
    /// Booleans.
    Bools(Vec<bool>),
    /// UTF-8 text, packed: item `i` is `data[ends[i-1]..ends[i]]`.
    Texts(Texts),
    /// Instants, microseconds since the epoch.
    Times(Vec<i64>),
    /// Nested values as JSON text, packed like [`Column::Texts`].
    Json(Texts),
}

impl Column {
    /// An empty column of `ty`.
    pub fn empty(ty: FieldType) -> Column {
        match ty {
            FieldType::Int => Column::Ints(Vec::new()),
            FieldType::Float => Column::Floats(Vec::new()),
            FieldType::Bool => Column::Bools(Vec::new()),
            FieldType::Text => Column::Texts(Texts::default()),
            FieldType::Time => Column::Times(Vec::new()),
            FieldType::Json => Column::Json(Texts::default()),
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        match self {
            Column::Ints(v) | Column::Times(v) => v.len(),
            Column::Floats(v) => v.len(),
            Column::Bools(v) => v.len(),
            Column::Texts(t) | Column::Json(t) => t.len(),
        }
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its type.
    pub fn field_type(&self) -> FieldType {
        match self {
            Column::Ints(_) => FieldType::Int,
            Column::Floats(_) => FieldType::Float,
            Column::Bools(_) => FieldType::Bool,
            Column::Texts(_) => FieldType::Text,
            Column::Times(_) => FieldType::Time,
            Column::Json(_) => FieldType::Json,
        }
    }

    // Appends the placeholder of an event without a value.
    fn push_placeholder(&mut self) {
        match self {
            Column::Ints(v) | Column::Times(v) => v.push(0),
            Column::Floats(v) => v.push(0.0),
            Column::Bools(v) => v.push(false),
            Column::Texts(t) | Column::Json(t) => t.push(""),
        }
    }

    // Drops values from `len` on (an event that failed half-way).
    fn truncate(&mut self, len: usize) {
        match self {
            Column::Ints(v) | Column::Times(v) => v.truncate(len),
            Column::Floats(v) => v.truncate(len),
            Column::Bools(v) => v.truncate(len),
            Column::Texts(t) | Column::Json(t) => t.truncate(len),
        }
    }
}

/// Many strings in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts {
    data: String,
    ends: Vec<u32>,
}

impl Texts {
    /// Appends `text`.
    pub fn push(&mut self, text: &str) {
        self.data.push_str(text);
        self.ends.push(u32::try_from(self.data.len()).expect("a batch's text under 4 GiB"));
    }

    /// Item `i`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Packs `items`.
    pub fn from_strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Texts {
        let mut texts = Texts::default();
        for item in items {
            texts.push(item.as_ref());
        }
        texts
    }

    // Keeps only items `rows` (strictly ascending), in place.
    fn keep_rows(&mut self, rows: &[u32]) {
        let mut data = std::mem::take(&mut self.data).into_bytes();
        let mut end = 0usize;
        for (new, &old) in rows.iter().enumerate() {
            let old = old as usize;
            let start = if old == 0 { 0 } else { self.ends[old - 1] as usize };
            let len = self.ends[old] as usize - start;
            data.copy_within(start..start + len, end);
            end += len;
            self.ends[new] = end as u32;
        }
        data.truncate(end);
        self.ends.truncate(rows.len());
        self.data = String::from_utf8(data).expect("whole items of UTF-8 text are UTF-8");
    }

    fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            let end = if len == 0 { 0 } else { self.ends[len - 1] as usize };
            self.data.truncate(end);
            self.ends.truncate(len);
        }
    }
}

/// One named column, and which events have no value in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// One value per event (a placeholder where missing).
    pub values: Column,
    /// Events without a value (absent or null), ascending.
    pub missing: Vec<u32>,
}

/// A batch of events as columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// How many events; every field has this many values.
    pub count: u32,
    /// The fields.
    pub fields: Vec<Field>,
}

impl Events {
    /// Bytes of text its text and JSON fields hold (what grows with the
    /// values, beyond a fixed size a value).
    pub fn text_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match &f.values {
                Column::Texts(t) | Column::Json(t) => t.data.len(),
                _ => 0,
            })
            .sum()
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Event times from the field `name`, which must hold instants.
    pub fn times(&self, name: &str) -> Option<&[i64]> {
        match self.field(name).map(|f| &f.values) {
            Some(Column::Times(t)) => Some(t),
            _ => None,
        }
    }

    /// The events at `rows` (in that order), with only the fields of
    /// `fields` that it has, in that order; `missing` follows the rows.
    pub fn gather(&self, rows: &[u32], fields: &[&str]) -> Events {
        let picked = fields.iter().filter_map(|name| self.field(name)).map(|field| {
            let values = match &field.values {
                Column::Ints(v) => Column::Ints(rows.iter().map(|&r| v[r as usize]).collect()),
                Column::Times(v) => Column::Times(rows.iter().map(|&r| v[r as usize]).collect()),
                Column::Floats(v) => Column::Floats(rows.iter().map(|&r| v[r as usize]).collect()),
                Column::Bools(v) => Column::Bools(rows.iter().map(|&r| v[r as usize]).collect()),
                Column::Texts(t) => Column::Texts(Texts::from_strings(rows.iter().map(|&r| t.get(r as usize)))),
                Column::Json(t) => Column::Json(Texts::from_strings(rows.iter().map(|&r| t.get(r as usize)))),
            };
            let missing = if field.missing.is_empty() {
                Vec::new()
            } else {
                rows.iter().enumerate().filter(|&(_, &r)| !Events::has(field, r)).map(|(i, _)| i as u32).collect()
            };
            Field { name: field.name.clone(), values, missing }
        });
        Events { count: rows.len() as u32, fields: picked.collect() }
    }

    /// Keeps only the events at `rows` (strictly ascending), in that
    /// order, every field; in place, so a buffer of held events is
    /// compacted in the memory it has.
    pub fn keep_rows(&mut self, rows: &[u32]) {
        debug_assert!(rows.windows(2).all(|w| w[0] < w[1]) && rows.last().is_none_or(|&r| r < self.count), "rows ascending, in range");
        fn keep<T: Copy>(values: &mut Vec<T>, rows: &[u32]) {
            for (new, &old) in rows.iter().enumerate() {
                values[new] = values[old as usize];
            }
            values.truncate(rows.len());
        }
        for field in &mut self.fields {
            match &mut field.values {
                Column::Ints(v) | Column::Times(v) => keep(v, rows),
                Column::Floats(v) => keep(v, rows),
                Column::Bools(v) => keep(v, rows),
                Column::Texts(t) | Column::Json(t) => t.keep_rows(rows),
            }
            if !field.missing.is_empty() {
                // Both ascending: a walk along the two.
                let (mut kept, mut m) = (0, 0);
                for (new, &old) in rows.iter().enumerate() {
                    while m < field.missing.len() && field.missing[m] < old {
                        m += 1;
                    }
                    if m < field.missing.len() && field.missing[m] == old {
                        field.missing[kept] = new as u32;
                        kept += 1;
                    }
                }
                field.missing.truncate(kept);
            }
        }
        self.count = rows.len() as u32;
    }

    /// Whether `other` has the same fields, of the same types, in the
    /// same order (so [`Events::append`] can append it).
    pub fn same_fields(&self, other: &Events) -> bool {
        self.fields.len() == other.fields.len() && self.fields.iter().zip(&other.fields).all(|(a, b)| a.name == b.name && a.values.field_type() == b.values.field_type())
    }

    /// Makes room for `rows` more events in every field of fixed size.
    pub fn reserve(&mut self, rows: usize) {
        for field in &mut self.fields {
            match &mut field.values {
                Column::Ints(v) | Column::Times(v) => v.reserve(rows),
                Column::Floats(v) => v.reserve(rows),
                Column::Bools(v) => v.reserve(rows),
                Column::Texts(t) | Column::Json(t) => t.ends.reserve(rows),
            }
        }
    }

    /// Events `range`, every field.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Events {
        let rows: Vec<u32> = (range.start as u32..range.end as u32).collect();
        let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        self.gather(&rows, &names)
    }

    /// Appends `other`'s events; fields are matched by position (both
    /// batches come from the same stage).
    pub fn append(&mut self, other: Events) {
        if self.fields.is_empty() && self.count == 0 {
            *self = other;
            return;
        }
        let base = self.count;
        for (mine, theirs) in self.fields.iter_mut().zip(other.fields) {
            mine.missing.extend(theirs.missing.iter().map(|m| m + base));
            match (&mut mine.values, theirs.values) {
                (Column::Ints(a), Column::Ints(b)) | (Column::Times(a), Column::Times(b)) => a.extend(b),
                (Column::Floats(a), Column::Floats(b)) => a.extend(b),
                (Column::Bools(a), Column::Bools(b)) => a.extend(b),
                (Column::Texts(a), Column::Texts(b)) | (Column::Json(a), Column::Json(b)) => b.iter().for_each(|t| a.push(t)),
                _ => {}
            }
        }
        self.count += other.count;
    }

    /// Checks what a plugin returned: every column `count` long, `missing`
    /// ascending and in range, no field named twice.
    pub fn check(&self) -> Result<(), String> {
        for (i, field) in self.fields.iter().enumerate() {
            if field.values.len() != self.count as usize {
                return Err(format!("field `{}` has {} values for {} events", field.name, field.values.len(), self.count));
            }
            if !field.missing.windows(2).all(|w| w[0] < w[1]) || field.missing.last().is_some_and(|&m| m >= self.count) {
                return Err(format!("field `{}` lists missing events out of order or past the batch", field.name));
            }
            if self.fields[..i].iter().any(|f| f.name == field.name) {
                return Err(format!("field `{}` appears twice", field.name));
            }
        }
        Ok(())
    }

    /// Whether event `i` has a value in `field`.
    pub fn has(field: &Field, i: u32) -> bool {
        field.missing.binary_search(&i).is_err()
    }
}

/// Turns a field's text into an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[derive(Default)]
pub enum TimeFormat {
    /// Numbers (or text holding one) are Unix seconds; other text is
    /// RFC 3339.
    #[default]
    Auto,
    /// RFC 3339 / ISO 8601 text (`2022-01-01T00:00:04Z`); numbers are
    /// refused.
    Rfc3339,
    /// Seconds since the epoch (a number, fractions allowed).
    UnixSeconds,
    /// Milliseconds since the epoch.
    UnixMillis,
    /// Microseconds since the epoch.
    UnixMicros,
}

impl TimeFormat {
    /// Reads `text` (a JSON string's content) as an instant.
    pub fn parse_text(self, text: &str) -> Result<Timestamp, String> {
        match self {
            TimeFormat::Rfc3339 => {
                Timestamp::parse_iso8601(text.trim()).ok_or_else(|| format!("`{text}` is not an RFC 3339 time (expected like 2022-01-01T00:00:04Z)"))
            }
            TimeFormat::Auto => match text.trim().parse::<f64>() {
                Ok(n) => TimeFormat::UnixSeconds.from_number(n),
                Err(_) => Timestamp::parse_iso8601(text.trim())
                    .ok_or_else(|| format!("`{text}` is neither Unix seconds nor an RFC 3339 time (expected like 2022-01-01T00:00:04Z)")),
            },
            _ => match text.trim().parse::<f64>() {
                Ok(n) => self.from_number(n),
                Err(_) => Err(format!("`{text}` is not a number of {}", self.unit())),
            },
        }
    }

    /// Reads a JSON number as an instant.
    pub fn from_number(self, n: f64) -> Result<Timestamp, String> {
        let scale = match self {
            TimeFormat::Rfc3339 => return Err(format!("{n} is a number, not an RFC 3339 time")),
            TimeFormat::UnixSeconds | TimeFormat::Auto => 1e6,
            TimeFormat::UnixMillis => 1e3,
            TimeFormat::UnixMicros => 1.0,
        };
        let micros = (n * scale).round();
        if micros.is_finite() && micros.abs() < 9.2e18 { Ok(Timestamp(micros as i64)) } else { Err(format!("{n} {} is out of range", self.unit())) }
    }

    /// Reads the manifest's name for a format.
    pub fn parse(name: &str) -> Option<TimeFormat> {
        Some(match name {
            "auto" => TimeFormat::Auto,
            "rfc3339" => TimeFormat::Rfc3339,
            "unix_s" | "unix-s" => TimeFormat::UnixSeconds,
            "unix_ms" | "unix-ms" => TimeFormat::UnixMillis,
            "unix_us" | "unix-us" => TimeFormat::UnixMicros,
            _ => return None,
        })
    }

    fn unit(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "RFC 3339 text",
            TimeFormat::Auto => "seconds or RFC 3339 text",
            TimeFormat::UnixSeconds => "seconds",
            TimeFormat::UnixMillis => "milliseconds",
            TimeFormat::UnixMicros => "microseconds",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every kind of column, some values missing: kept in place, the rows
    // are what a gather of them gives.
    #[test]
    fn rows_kept_in_place_are_the_rows_gathered() {
        let n = 50u32;
        let field = |name: &str, values: Column, every: u32| Field { name: name.to_owned(), values, missing: (0..n).filter(|i| i % every == 0).collect() };
        let texts = |prefix: &str| Texts::from_strings((0..n).map(|i| format!("{prefix}{}", "é".repeat(i as usize % 4))));
        let events = Events {
            count: n,
            fields: vec![
                field("i", Column::Ints((0..n as i64).collect()), 3),
                field("f", Column::Floats((0..n).map(|i| i as f64 / 2.0).collect()), 7),
                field("b", Column::Bools((0..n).map(|i| i % 2 == 0).collect()), 50),
                field("t", Column::Texts(texts("t")), 5),
                field("at", Column::Times((0..n as i64).map(|i| i * 1_000).collect()), 1),
                field("j", Column::Json(texts("\"j")), 9),
            ],
        };
        let names: Vec<&str> = events.fields.iter().map(|f| f.name.as_str()).collect();
        for rows in [vec![], vec![0], vec![49], (0..n).collect(), (0..n).filter(|i| i % 3 != 1).collect::<Vec<_>>(), vec![2, 3, 5, 7, 11, 13, 47]] {
            let mut kept = events.clone();
            kept.keep_rows(&rows);
            assert_eq!(kept, events.gather(&rows, &names), "rows {rows:?}");
            kept.check().unwrap();
        }
    }
}
