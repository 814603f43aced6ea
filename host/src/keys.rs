//! Key ids. A window operator turns each key it holds state for into a
//! small number once per record; its clock and its windows then keep their
//! per-key state side by side in vectors indexed by that number. A record
//! costs one hash probe instead of one per map, and a timer names its key
//! in four bytes rather than a copy of the key.

use crate::fast::{FastMap, Key};

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

/// The keys of one operator and their ids.
#[derive(Debug, Default, Clone)]
pub struct KeyIds {
    ids: FastMap<Key, KeyId>,
    /// Each id's key; empty for an id released and not yet handed out again.
    names: Vec<Key>,
    free: Vec<KeyId>,
}

impl KeyIds {
    /// The id of `key`, given it one if it has none.
    pub fn intern(&mut self, key: &str) -> KeyId {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let name = Key::new(key);
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id.index()] = name.clone();
                id
            }
            None => {
                let id = KeyId(u32::try_from(self.names.len()).expect("an operator holds fewer than 2^32 keys"));
                self.names.push(name.clone());
                id
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// The id of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<KeyId> {
        self.ids.get(key).copied()
    }

    /// The key of `id` (empty if released).
    pub fn name(&self, id: KeyId) -> &str {
        &self.names[id.index()]
    }

    /// Forgets the key of `id`; the id goes to the next new key.
    pub fn release(&mut self, id: KeyId) {
        // Only while it is the key's id: a second release does nothing.
        let name = &self.names[id.index()];
        if self.ids.get(name) == Some(&id) {
            self.ids.remove(name);
            self.names[id.index()] = Key::default();
            self.free.push(id);
        }
    }

    /// Keys with an id.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no key has an id.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
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
}
