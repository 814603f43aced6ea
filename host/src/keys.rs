//! Key ids. A window operator turns each key it holds state for into a
//! small number once per record; its clock and its windows then keep their
//! per-key state side by side in vectors indexed by that number. A record
//! costs one hash probe instead of one per map, and a timer names its key
//! in four bytes rather than a copy of the key.
//!
//! The ids live in an open-addressed table of our own (32-byte entries,
//! two to a cache line: a tag from the key's hash, the id, and the key
//! itself when it is up to 23 bytes long), so that the pipeline can ask
//! for an entry's cache line ([`KeyIds::prefetch`]) a few events before it
//! needs it: with 100,000 keys nearly every look-up misses the cache, and
//! misses waited for one at a time were a quarter of the run. A key kept
//! beside its entry is compared without a second miss, for its name.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use crate::fast::{Key, prefetch};

/// A key's number within one operator. Ids of keys the operator has
/// forgotten are handed out again, so an id means nothing outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// Its place in a vector indexed by key id.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A key's hash, the same in every operator of the process (so a batch's
/// keys are hashed once, before knowing whose they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u64);

impl KeyHash {
    /// The hash of `key`.
    pub fn of(key: &str) -> Self {
        static HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);
        KeyHash(HASHER.hash_one(key))
    }

    // The bits compared before the key; never equal to an empty entry's.
    fn tag(self) -> u32 {
        (self.0 as u32) | 1
    }
}

// A table entry: empty when `tag` is 0. Two to a cache line; the key is
// also in `names`, by id.
#[derive(Debug, Clone, Default)]
#[repr(align(32))]
struct Entry {
    tag: u32,
    id: u32,
    name: Key,
}

// Whether two keys are the same; short ones (most keys) without a call
// to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && if a.len() <= 24 { a.iter().zip(b).all(|(x, y)| x == y) } else { a == b }
}

/// The keys of one operator and their ids.
#[derive(Debug, Default, Clone)]
pub struct KeyIds {
    /// Open addressing, linear probing; a power of two long (or empty),
    /// at most half full.
    table: Vec<Entry>,
    /// Each id's key; empty for an id released and not yet handed out again.
    names: Vec<Key>,
    free: Vec<KeyId>,
}

impl KeyIds {
    // Where `hash` starts probing (the high bits: the low ones are the tag).
    fn home(&self, hash: KeyHash) -> usize {
        let bits = self.table.len().trailing_zeros();
        if bits == 0 { 0 } else { (hash.0 >> (64 - bits)) as usize }
    }

    // The entry of `key`, or the empty one where it would go.
    fn find(&self, key: &str, hash: KeyHash) -> (usize, bool) {
        let mask = self.table.len() - 1;
        let (tag, mut i) = (hash.tag(), self.home(hash));
        loop {
            let entry = &self.table[i];
            if entry.tag == 0 {
                return (i, false);
            }
            if entry.tag == tag && same(entry.name.as_bytes(), key.as_bytes()) {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// Asks the memory for where `hash`'s entry is, so that a look-up of
    /// it a little later finds it in the cache. Changes nothing.
    pub fn prefetch(&self, hash: KeyHash) {
        if !self.table.is_empty() {
            prefetch(&self.table[self.home(hash)]);
        }
    }

    /// The id of `key`, given it one if it has none.
    pub fn intern(&mut self, key: &str) -> KeyId {
        self.intern_hashed(key, KeyHash::of(key))
    }

    /// [`KeyIds::intern`] of a key whose hash is known.
    pub fn intern_hashed(&mut self, key: &str, hash: KeyHash) -> KeyId {
        self.intern_new(key, hash).0
    }

    /// [`KeyIds::intern_hashed`], and whether the key is new (had no id).
    pub fn intern_new(&mut self, key: &str, hash: KeyHash) -> (KeyId, bool) {
        if !self.table.is_empty() {
            let (i, found) = self.find(key, hash);
            if found {
                return (KeyId(self.table[i].id), false);
            }
        }
        if (self.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let name = Key::new(key);
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id.index()] = name;
                id
            }
            None => {
                let id = KeyId(u32::try_from(self.names.len()).expect("an operator holds fewer than 2^32 keys"));
                self.names.push(name);
                id
            }
        };
        let (i, _) = self.find(key, hash);
        self.table[i] = Entry { tag: hash.tag(), id: id.0, name: self.names[id.index()].clone() };
        (id, true)
    }

    /// The keys with an id, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.table.iter().filter(|e| e.tag != 0).map(|e| &*e.name)
    }

    fn grow(&mut self) {
        let len = (self.table.len() * 2).max(16);
        let old = std::mem::replace(&mut self.table, vec![Entry::default(); len]);
        for entry in old.into_iter().filter(|e| e.tag != 0) {
            let (i, _) = self.find(&entry.name, KeyHash::of(&entry.name));
            self.table[i] = entry;
        }
    }

    /// The id of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<KeyId> {
        if self.table.is_empty() {
            return None;
        }
        match self.find(key, KeyHash::of(key)) {
            (i, true) => Some(KeyId(self.table[i].id)),
            _ => None,
        }
    }

    /// The key of `id` (empty if released).
    pub fn name(&self, id: KeyId) -> &str {
        &self.names[id.index()]
    }

    /// Forgets the key of `id`; the id goes to the next new key.
    pub fn release(&mut self, id: KeyId) {
        // Only while it is the key's id: a second release does nothing.
        let name = self.names[id.index()].clone();
        let (mut hole, found) = if self.table.is_empty() { (0, false) } else { self.find(&name, KeyHash::of(&name)) };
        if !found || self.table[hole].id != id.0 {
            return;
        }
        // Backward-shift deletion: entries after the hole that may sit
        // in it move back, so no probe stops short of its key.
        let mask = self.table.len() - 1;
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            if self.table[i].tag == 0 {
                break;
            }
            let home = self.home(KeyHash::of(&self.table[i].name));
            // The entry may move to the hole when its home is not in (hole, i].
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.table.swap(hole, i);
                hole = i;
            }
        }
        self.table[hole] = Entry::default();
        self.names[id.index()] = Key::default();
        self.free.push(id);
    }

    /// Keys with an id.
    pub fn len(&self) -> usize {
        // Every id is a key's or free.
        self.names.len() - self.free.len()
    }

    /// Whether no key has an id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_id_and_a_released_id_is_reused() {
        let mut ids = KeyIds::default();
        let (a, b) = (ids.intern("a"), ids.intern("b"));
        assert_ne!(a, b);
        assert_eq!(ids.intern("a"), a);
        assert_eq!((ids.name(b), ids.get("b"), ids.len()), ("b", Some(b), 2));
        ids.release(a);
        assert_eq!((ids.get("a"), ids.len()), (None, 1));
        ids.release(a);
        let c = ids.intern("c");
        assert_eq!((c, ids.name(c)), (a, "c"), "the freed id, now c's");
        assert_eq!(ids.intern("d"), KeyId(2), "released twice, handed out once");
    }

    // Against a map, through growth and many releases (which move entries
    // back along their probe runs): every key still found, none invented.
    // A third of the keys are too long to be kept inside their entries.
    #[test]
    fn keys_stay_found_through_growth_and_releases() {
        let mut ids = KeyIds::default();
        let mut truth = std::collections::HashMap::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = state % 3_000;
            let key = if n % 3 == 0 { format!("k{n}-a-name-longer-than-twenty-three-bytes") } else { format!("k{n}") };
            if step % 3 == 0 {
                if let Some(id) = truth.remove(&key) {
                    ids.release(id);
                }
            } else {
                let id = ids.intern(&key);
                assert_eq!(*truth.entry(key.clone()).or_insert(id), id, "step {step}: `{key}` changed id");
            }
            if step % 1_000 == 0 {
                assert_eq!(ids.len(), truth.len());
                for (key, id) in &truth {
                    assert_eq!((ids.get(key), ids.name(*id)), (Some(*id), key.as_str()), "step {step}");
                }
                assert_eq!(ids.get("absent"), None);
            }
        }
    }
}
