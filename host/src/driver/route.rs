//! Which worker a raw JSON record goes to, by its key field read without
//! decoding the rest of the record. Every record of a key goes to the
//! same worker, in the order read, so each worker's windows are exactly
//! the windows a single worker would have made for its keys.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::fast::{FastMap, stable_hash, stable_hash_bytes};

/// How many distinct keys an [`Assigner`] places by load; later keys go
/// by hash, so its map stays small whatever the number of keys.
const BALANCED_KEYS: usize = 16_384;

/// Shares the keys of one input out among workers. A key seen for the
/// first time goes to the worker with the fewest records so far and stays
/// there; a record whose key cannot be read cheaply goes to worker 0
/// (which decodes it and dead-letters it if it must). The choice depends
/// only on the records read so far, in order (one assigner routes a file's
/// segments in file order, or stdin's records as read), so a run makes the
/// same choices however its threads are timed. Past
/// [`BALANCED_KEYS`] keys, a new key goes by the hash of the key.
#[derive(Debug)]
pub struct Assigner {
    field: String,
    owner: FastMap<u64, u32>,
    load: Vec<u64>,
}

impl Assigner {
    /// Shares out by the top-level field `field` among `workers`.
    pub fn new(field: &str, workers: usize) -> Self {
        Assigner { field: field.to_owned(), owner: FastMap::default(), load: vec![0; workers.max(1)] }
    }

    /// The worker of the next record, `value`.
    pub fn worker(&mut self, value: &[u8]) -> usize {
        self.assign(key_hash(value, &self.field))
    }

    /// The worker of the next record, by its [`key_hash`] (read already).
    pub fn assign(&mut self, hash: Option<u64>) -> usize {
        let workers = self.load.len();
        let worker = match hash {
            None => 0,
            Some(hash) => match self.owner.get(&hash) {
                Some(&worker) => worker as usize,
                None if self.owner.len() < BALANCED_KEYS => {
                    let worker = (0..workers).min_by_key(|&w| self.load[w]).unwrap_or(0);
                    self.owner.insert(hash, worker as u32);
                    worker
                }
                // FNV's low bits follow the key's last bytes (keys like
                // `dev-000001` would split unevenly), so mix them first.
                None => ((hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % workers as u64) as usize,
            },
        };
        self.load[worker] += 1;
        worker
    }
}

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
    // The common spelling first: the field opens the object, its value a
    // plain ASCII string (`{"device":"dev-7",...`).
    if let Some(rest) = v.strip_prefix(b"{\"").and_then(|r| r.strip_prefix(field)).and_then(|r| r.strip_prefix(b"\":\""))
        && let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\' || !b.is_ascii())
        && rest[end] == b'"'
    {
        return Scan::Key(stable_hash_bytes(&rest[..end]));
    }
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
        while let Some(at) = memchr::memchr2(b'"', b'\\', v.get(j..)?) {
            j += at;
            if v[j] == b'"' {
                return Some((j + 1, escaped));
            }
            escaped = true;
            j += 2;
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
                    // Most keys are ASCII: checked without a UTF-8 decode.
                    Some((end, false)) => match &v[i + 1..end - 1] {
                        key if key.is_ascii() => Scan::Key(stable_hash_bytes(key)),
                        key => std::str::from_utf8(key).map_or(Scan::Unsure, |key| Scan::Key(stable_hash(key))),
                    },
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
    fn keys_go_to_the_least_loaded_worker_and_stay_there() {
        let mut a = Assigner::new("k", 2);
        let line = |k: &str| format!(r#"{{"k":"{k}"}}"#);
        let order: Vec<usize> = ["a", "a", "a", "b", "c", "b", "a", "d"].iter().map(|k| a.worker(line(k).as_bytes())).collect();
        // a → 0; b → 1 (0 has 3); c → 1 (1 against 3); b stays; d → 1 (3 against 4).
        assert_eq!(order, [0, 0, 0, 1, 1, 1, 0, 1]);
        assert_eq!(a.worker(b"not json"), 0, "an unreadable key goes to worker 0");
        // Another reader of the same records makes the same choices.
        let mut b = Assigner::new("k", 2);
        let again: Vec<usize> = ["a", "a", "a", "b", "c", "b", "a", "d"].iter().map(|k| b.worker(line(k).as_bytes())).collect();
        assert_eq!(again, order);
    }

    #[test]
    fn many_keys_go_by_hash_past_the_balanced_ones() {
        let mut a = Assigner::new("k", 3);
        let mut counts = [0usize; 3];
        let line = |key: usize| format!(r#"{{"k":"dev-{key:06}"}}"#);
        let first: Vec<usize> = (0..BALANCED_KEYS + 30_000).map(|key| a.worker(line(key).as_bytes())).collect();
        first.iter().for_each(|&w| counts[w] += 1);
        assert_eq!(a.owner.len(), BALANCED_KEYS, "the map stops growing");
        assert!(counts.iter().all(|&c| c > 14_000), "{counts:?}");
        // Every key stays where it went, placed by load or by hash.
        let again: Vec<usize> = (0..BALANCED_KEYS + 30_000).map(|key| a.worker(line(key).as_bytes())).collect();
        assert!(again == first, "a key moved to another worker");
    }

    #[test]
    fn records_without_a_readable_key_have_no_hash() {
        assert_eq!(key_hash(br#"{"temp":1.5}"#, "device"), None);
        assert_eq!(key_hash(br#"{"device":1.5}"#, "device"), None);
        assert_eq!(key_hash(b"not json", "device"), None);
        assert_eq!(key_hash(br#"["device","x"]"#, "device"), None);
    }
}
