//! The built-in deserializer for JSON objects (JSON lines, Kafka JSON
//! values): decodes exactly the fields the pipeline reads, typed, into
//! columns, in one pass over each record without building a value tree.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Column, Events, Field, FieldSpec, TimeFormat};

/// Decodes JSON objects into the columns of `fields`.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    fields: Vec<FieldSpec>,
    time_format: TimeFormat,
}

/// A decoded batch: events, the record each came from, and the records
/// that failed (index, reason naming the field).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The events, one per record that decoded.
    pub events: Events,
    /// For each event, the index of its record in the batch.
    pub origins: Vec<u32>,
    /// Records that did not decode: index and why.
    pub failures: Vec<(u32, String)>,
}

impl JsonDecoder {
    /// A decoder of `fields`; fields of type `time` are read with
    /// `time_format` (text or numbers, as the format says).
    pub fn new(fields: Vec<FieldSpec>, time_format: TimeFormat) -> Self {
        JsonDecoder { fields, time_format }
    }

    /// The fields it decodes.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// Decodes each record of `records`, an event per JSON object.
    pub fn decode<'r>(&self, records: impl IntoIterator<Item = &'r [u8]>) -> Decoded {
        let mut columns: Vec<Column> = self.fields.iter().map(|f| Column::empty(f.ty)).collect();
        let mut missing: Vec<Vec<u32>> = vec![Vec::new(); self.fields.len()];
        let mut seen = vec![false; self.fields.len()];
        let mut out = Decoded::default();
        let mut count = 0u32;
        for (index, record) in records.into_iter().enumerate() {
            let index = index as u32;
            seen.iter_mut().for_each(|s| *s = false);
            let mut row = Row { decoder: self, columns: &mut columns, seen: &mut seen };
            let mut de = serde_json::Deserializer::from_slice(record);
            let decoded = de.deserialize_map(&mut row).and_then(|()| de.end()).map_err(|err| reason(&err));
            let complete = decoded.and_then(|()| {
                for (i, field) in self.fields.iter().enumerate() {
                    if !seen[i] {
                        if !field.optional {
                            return Err(format!("missing field `{}`", field.name));
                        }
                        columns[i].push_placeholder();
                        missing[i].push(count);
                    }
                }
                Ok(())
            });
            match complete {
                Ok(()) => {
                    out.origins.push(index);
                    count += 1;
                }
                Err(why) => {
                    // Undo what this record appended before it failed.
                    for (i, column) in columns.iter_mut().enumerate() {
                        column.truncate(count as usize);
                        if missing[i].last() == Some(&count) {
                            missing[i].pop();
                        }
                    }
                    out.failures.push((index, why));
                }
            }
        }
        out.events = Events {
            count,
            fields: self.fields.iter().zip(columns).zip(missing).map(|((spec, values), missing)| Field { name: spec.name.clone(), values, missing }).collect(),
        };
        out
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

// serde_json's message without its " at line 1 column N" (a record is one
// line; the field is named instead).
fn reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if err.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

struct Row<'a> {
    decoder: &'a JsonDecoder,
    columns: &'a mut [Column],
    seen: &'a mut [bool],
}

impl<'de> Visitor<'de> for &mut Row<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(slot) = map.next_key_seed(KeySeed(self.decoder))? {
            match slot {
                Some(i) if !self.seen[i] => {
                    let spec = &self.decoder.fields[i];
                    let present = map.next_value_seed(ValueSeed { spec, format: self.decoder.time_format, column: &mut self.columns[i] })?;
                    self.seen[i] = present;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

// A key, as the index of the field it names (none: not decoded).
struct KeySeed<'a>(&'a JsonDecoder);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self.0.index(name))
    }
}

// One field's value, appended to its column.
struct ValueSeed<'a> {
    spec: &'a FieldSpec,
    format: TimeFormat,
    column: &'a mut Column,
}

// Whether it had a value: a null is missing, which only an optional field
// may be.
impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(mut self, d: D) -> Result<bool, D::Error> {
        let in_field = |err: D::Error| de::Error::custom(format!("field `{}`: {err}", self.spec.name));
        // The raw text first, then the typed value from it.
        let raw: &RawValue = <&RawValue as serde::Deserialize>::deserialize(d).map_err(in_field)?;
        let text = raw.get();
        if text == "null" {
            return if self.spec.optional { Ok(false) } else { Err(de::Error::custom(format!("field `{}`: is null", self.spec.name))) };
        }
        self.push(text).map(|()| true).map_err(|why| de::Error::custom(format!("field `{}`: {why}", self.spec.name)))
    }
}

impl ValueSeed<'_> {
    fn push(&mut self, text: &str) -> Result<(), String> {
        let found = || describe(text);
        match &mut *self.column {
            // Numbers may come as text holding one (CSV rows, loose producers).
            Column::Floats(v) => v.push(number(text).or_else(|| numeric_text(text)).ok_or_else(|| format!("expected a number, found {}", found()))?),
            Column::Ints(v) => v.push(
                text.parse::<i64>()
                    .ok()
                    .or_else(|| string(text).and_then(|s| s.trim().parse::<i64>().ok()))
                    .ok_or_else(|| format!("expected a whole number, found {}", found()))?,
            ),
            // Booleans too may come as text (CSV rows: "true", "False").
            Column::Bools(v) => v.push(match text {
                "true" => true,
                "false" => false,
                _ => match string(text).map(|s| s.trim().to_ascii_lowercase()).as_deref() {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err(format!("expected true or false, found {}", found())),
                },
            }),
            // A number or boolean reads as its JSON text (numeric ids).
            Column::Texts(t) => t.push(
                &string(text)
                    .or_else(|| (number(text).is_some() || text == "true" || text == "false").then_some(std::borrow::Cow::Borrowed(text)))
                    .ok_or_else(|| format!("expected text, found {}", found()))?,
            ),
            Column::Times(v) => {
                let at = match string(text) {
                    Some(s) => self.format.parse_text(&s)?,
                    None => self.format.from_number(number(text).ok_or_else(|| format!("expected a time, found {}", found()))?)?,
                };
                v.push(at.0);
            }
            Column::Json(t) => t.push(text),
        }
        debug_assert_eq!(self.column.field_type(), self.spec.ty);
        Ok(())
    }
}

// A JSON number's value; none for anything else.
fn number(text: &str) -> Option<f64> {
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || *first == b'-') {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

// A JSON string holding a finite number.
fn numeric_text(text: &str) -> Option<f64> {
    string(text)?.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

// A JSON string's content; none for anything else.
fn string(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if inner.contains('\\') { serde_json::from_str::<String>(text).ok().map(std::borrow::Cow::Owned) } else { Some(std::borrow::Cow::Borrowed(inner)) }
}

// A JSON value for a message: its kind and (short) text.
fn describe(text: &str) -> String {
    let kind = match text.as_bytes().first() {
        Some(b'"') => "text",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    };
    let shown: String = text.chars().take(40).collect();
    format!("{kind} {shown}{}", if shown.len() < text.len() { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldType, Texts};

    fn decoder() -> JsonDecoder {
        JsonDecoder::new(
            vec![
                FieldSpec::required("device", FieldType::Text),
                FieldSpec::required("temp", FieldType::Float),
                FieldSpec::required("ts", FieldType::Time),
                FieldSpec { name: "hum".into(), ty: FieldType::Float, optional: true },
                FieldSpec { name: "meta".into(), ty: FieldType::Json, optional: true },
            ],
            TimeFormat::UnixSeconds,
        )
    }

    fn texts(items: &[&str]) -> Texts {
        let mut t = Texts::default();
        items.iter().for_each(|i| t.push(i));
        t
    }

    #[test]
    fn the_fields_read_are_decoded_typed_and_the_rest_skipped() {
        let lines: [&[u8]; 3] = [
            br#"{"ts": 1577836800, "device": "b8:27", "temp": 22.7, "light": false, "extra": {"deep": [1, 2]}}"#,
            br#"{"device":"a\"b","temp":-1,"ts":1577836801.5,"hum":51.0,"meta":{"fw":[1,2]}}"#,
            br#"{"device":"c","temp":"3e2","ts":"1577836802","hum":null}"#,
        ];
        let d = decoder().decode(lines);
        assert_eq!(d.failures, Vec::<(u32, String)>::new());
        assert_eq!(d.origins, [0, 1, 2]);
        assert_eq!(d.events.count, 3);
        let column = |name: &str| d.events.field(name).unwrap().clone();
        assert_eq!(column("device").values, Column::Texts(texts(&["b8:27", "a\"b", "c"])));
        assert_eq!(column("temp").values, Column::Floats(vec![22.7, -1.0, 300.0]));
        assert_eq!(column("ts").values, Column::Times(vec![1_577_836_800_000_000, 1_577_836_801_500_000, 1_577_836_802_000_000]));
        assert_eq!(column("hum").missing, [0, 2], "absent and null are both missing");
        assert_eq!(column("hum").values, Column::Floats(vec![0.0, 51.0, 0.0]));
        assert_eq!(column("meta").values, Column::Json(texts(&["", r#"{"fw":[1,2]}"#, ""])));
    }

    #[test]
    fn a_record_that_does_not_fit_fails_alone_naming_the_field() {
        let lines: [&[u8]; 6] = [
            br#"{"device":"a","temp":"warm","ts":1}"#,
            br#"{"device":"a","temp":1.0}"#,
            br#"{"device":[7],"temp":1.0,"ts":1}"#,
            b"not json",
            br#"{"device":"ok","temp":2.0,"ts":2}"#,
            br#"{"device":"a","temp":null,"ts":1}"#,
        ];
        let d = decoder().decode(lines);
        let reasons: Vec<(u32, &str)> = d.failures.iter().map(|(i, r)| (*i, r.as_str())).collect();
        assert_eq!(reasons[0], (0, "field `temp`: expected a number, found text \"warm\""));
        assert_eq!(reasons[1], (1, "missing field `ts`"));
        assert_eq!(reasons[2].0, 2);
        assert!(reasons[2].1.starts_with("field `device`: expected text, found"), "{}", reasons[2].1);
        assert_eq!(reasons[3].0, 3);
        assert!(reasons[3].1.starts_with("expected ident"), "{}", reasons[3].1);
        assert_eq!(reasons[4], (5, "field `temp`: is null"));
        // The one good record, with nothing left over from the bad ones.
        assert_eq!(d.origins, [4]);
        assert_eq!(d.events.field("device").unwrap().values, Column::Texts(texts(&["ok"])));
        assert_eq!(d.events.field("temp").unwrap().values, Column::Floats(vec![2.0]));
        assert!(d.events.fields.iter().all(|f| f.values.len() == 1 && f.missing.len() == usize::from(f.name == "hum" || f.name == "meta")));
    }

    #[test]
    fn times_follow_the_format() {
        let rfc = JsonDecoder::new(vec![FieldSpec::required("t", FieldType::Time)], TimeFormat::Rfc3339);
        let d = rfc.decode([br#"{"t":"2022-01-01T00:00:04Z"}"#.as_slice(), br#"{"t":4}"#.as_slice(), br#"{"t":"noon"}"#.as_slice()]);
        assert_eq!(d.events.times("t").unwrap(), [1_640_995_204_000_000]);
        assert_eq!(d.failures[0], (1, "field `t`: 4 is a number, not an RFC 3339 time".to_owned()));
        assert!(d.failures[1].1.contains("`noon` is not an RFC 3339 time"), "{:?}", d.failures[1]);
        let ms = JsonDecoder::new(vec![FieldSpec::required("t", FieldType::Time)], TimeFormat::UnixMillis);
        assert_eq!(ms.decode([br#"{"t":1500}"#.as_slice()]).events.times("t").unwrap(), [1_500_000]);
    }

    #[test]
    fn booleans_may_come_as_text_like_csv_rows() {
        let d = JsonDecoder::new(vec![FieldSpec::required("on", FieldType::Bool)], TimeFormat::Rfc3339);
        let lines: [&[u8]; 5] = [br#"{"on":true}"#, br#"{"on":"false"}"#, br#"{"on":"True"}"#, br#"{"on":"yes"}"#, br#"{"on":1}"#];
        let d = d.decode(lines);
        assert_eq!(d.events.field("on").unwrap().values, Column::Bools(vec![true, false, true]));
        assert_eq!(d.failures.iter().map(|(i, r)| (*i, r.as_str())).collect::<Vec<_>>(), [(3, "field `on`: expected true or false, found text \"yes\""), (4, "field `on`: expected true or false, found a number 1")]);
    }
}
