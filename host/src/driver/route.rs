//! Which worker a raw JSON record goes to: the hash of its key field, read
//! without decoding the rest of the record. Every record of a key goes to
//! the same worker, in the order read, so each worker's windows are exactly
//! the windows a single worker would have made for its keys.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::fast::stable_hash;

/// The hash of the top-level field `field` of the JSON object `value`, as
/// the host's key-by-field would spell the key (a string as it is, an
/// integer in decimal). `None` when it cannot be read that cheaply (not an
/// object, no such field, another type): such a record goes to any one
/// worker, which decodes it fully and dead-letters it if it must.
pub fn key_hash(value: &[u8], field: &str) -> Option<u64> {
    match scan(value, field.as_bytes()) {
        Scan::Key(hash) => Some(hash),
        Scan::None => None,
        Scan::Unsure => parsed_key_hash(value, field),
    }
}

// The careful way: serde_json reads the object up to the field.
fn parsed_key_hash(value: &[u8], field: &str) -> Option<u64> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(value);
    // An error after the field was found (the rest of the object is not
    // read) does not matter.
    let _ = de::Deserializer::deserialize_map(&mut de, Object { field, found: &mut found });
    found
}

// What a byte scan of the record found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Key(u64),
    // Surely no key (not an object, no such field, a non-key type).
    None,
    // Something the scan does not handle (escapes): parse it instead.
    Unsure,
}

// A top-level scan of a JSON object for `field`, about ten times faster
// than parsing: strings are skipped by their quotes, nested values by
// bracket depth, numbers are not converted. Anything unusual is `Unsure`.
fn scan(v: &[u8], field: &[u8]) -> Scan {
    let ws = |mut i: usize| {
        while i < v.len() && matches!(v[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    // The end (after the closing quote) of the string starting at `i`, and
    // whether it has escapes.
    let string = |i: usize| -> Option<(usize, bool)> {
        let mut j = i + 1;
        let mut escaped = false;
        while j < v.len() {
            match v[j] {
                b'"' => return Some((j + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    j += 2;
                }
                _ => j += 1,
            }
        }
        None
    };
    let mut i = ws(0);
    if v.get(i) != Some(&b'{') {
        return Scan::None;
    }
    i = ws(i + 1);
    if v.get(i) == Some(&b'}') {
        return Scan::None;
    }
    loop {
        if v.get(i) != Some(&b'"') {
            return Scan::Unsure;
        }
        let Some((end, escaped)) = string(i) else { return Scan::Unsure };
        if escaped {
            return Scan::Unsure;
        }
        let name = &v[i + 1..end - 1];
        i = ws(end);
        if v.get(i) != Some(&b':') {
            return Scan::Unsure;
        }
        i = ws(i + 1);
        let Some(&first) = v.get(i) else { return Scan::Unsure };
        // A null counts as absent (the decoder then takes a later value).
        if name == field && first != b'n' {
            return match first {
                b'"' => match string(i) {
                    Some((end, false)) => std::str::from_utf8(&v[i + 1..end - 1]).map_or(Scan::Unsure, |key| Scan::Key(stable_hash(key))),
                    _ => Scan::Unsure,
                },
                b'-' | b'0'..=b'9' => {
                    let end = v[i..].iter().position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')).map_or(v.len(), |n| i + n);
                    match std::str::from_utf8(&v[i..end]).ok().and_then(|t| t.parse::<i64>().ok()) {
                        Some(n) => Scan::Key(stable_hash(&n.to_string())),
                        None => Scan::Unsure,
                    }
                }
                _ => Scan::None,
            };
        }
        // Skip the value.
        i = match first {
            b'"' => match string(i) {
                Some((end, _)) => end,
                None => return Scan::Unsure,
            },
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match v.get(j) {
                        None => return Scan::Unsure,
                        Some(b'"') => match string(j) {
                            Some((end, _)) => {
                                j = end;
                                continue;
                            }
                            None => return Scan::Unsure,
                        },
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                break j + 1;
                            }
                        }
                        Some(_) => {}
                    }
                    j += 1;
                }
            }
            _ => v[i..].iter().position(|b| matches!(b, b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r')).map_or(v.len(), |n| i + n),
        };
        i = ws(i);
        match v.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return Scan::None,
            _ => return Scan::Unsure,
        }
    }
}

struct Object<'a> {
    field: &'a str,
    found: &'a mut Option<u64>,
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(is_field) = map.next_key_seed(FieldIs(self.field))? {
            if is_field {
                match map.next_value_seed(Key)? {
                    // A null counts as absent, as in the decoder.
                    KeyValue::Null => continue,
                    KeyValue::Other => return Ok(()),
                    KeyValue::Hash(hash) => {
                        *self.found = Some(hash);
                        // Stop here: the caller ignores the error this leaves.
                        return Err(de::Error::custom("found"));
                    }
                }
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

// Whether an object's field name is the one sought (no allocation).
struct FieldIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for FieldIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

struct Key;

// What the key field holds.
enum KeyValue {
    Hash(u64),
    Null,
    Other,
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = KeyValue;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<KeyValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = KeyValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyValue, E> {
        Ok(KeyValue::Hash(stable_hash(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyValue, E> {
        Ok(KeyValue::Hash(stable_hash(&v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyValue, E> {
        Ok(KeyValue::Hash(stable_hash(&v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyValue, E> {
        Ok(KeyValue::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyValue, E> {
        Ok(KeyValue::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyValue, E> {
        Ok(KeyValue::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyValue::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyValue::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_field_is_found_however_the_record_is_spelled() {
        let want = Some(stable_hash("dev-7"));
        assert_eq!(key_hash(br#"{"device":"dev-7","temp":1.5}"#, "device"), want);
        assert_eq!(key_hash(br#"{"temp":1.5, "nested":{"device":"x"}, "device" : "dev-7"}"#, "device"), want);
        assert_eq!(key_hash(br#"{"device":"dev\u002d7"}"#, "device"), want, "escapes are decoded");
        assert_eq!(key_hash(br#"{"device":42}"#, "device"), Some(stable_hash("42")));
        // The decoder takes the first value that is not null.
        assert_eq!(key_hash(br#"{"device":null,"device":"dev-7"}"#, "device"), want);
    }

    #[test]
    fn the_scan_agrees_with_the_parse() {
        let lines: [&[u8]; 13] = [
            br#"{"device":"dev-7","temp":1.5}"#,
            br#" { "temp" : -1.5e3 , "tags":["a","}",{"device":"no"}], "device" : "dev-7" } "#,
            br#"{"a":"x\"y","device":"k"}"#,
            br#"{"device":"d\u0065v"}"#,
            br#"{"device":-12}"#,
            br#"{"device":12.5}"#,
            br#"{"device":true}"#,
            br#"{"device":null}"#,
            br#"{"other":1}"#,
            br#"{}"#,
            br#"[1,2]"#,
            br#"{"device":"dev-7""#,
            br#"{"device":null,"device":"dev-7"}"#,
        ];
        for line in lines {
            let text = String::from_utf8_lossy(line);
            let scanned = match scan(line, b"device") {
                Scan::Key(hash) => Some(hash),
                Scan::None => None,
                Scan::Unsure => parsed_key_hash(line, "device"),
            };
            assert_eq!(scanned, parsed_key_hash(line, "device"), "{text}");
        }
        assert_eq!(scan(br#"{"device":"d\u0065v"}"#, b"device"), Scan::Unsure, "escapes are left to the parser");
    }

    #[test]
    fn records_without_a_readable_key_have_no_hash() {
        assert_eq!(key_hash(br#"{"temp":1.5}"#, "device"), None);
        assert_eq!(key_hash(br#"{"device":1.5}"#, "device"), None);
        assert_eq!(key_hash(b"not json", "device"), None);
        assert_eq!(key_hash(br#"["device","x"]"#, "device"), None);
    }
}
