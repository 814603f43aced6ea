//! Window state the host owns: each open window's accumulator (bytes the
//! fold plugin encodes), its bounds and how many events it has absorbed.
//! A plugin never holds window state, so it survives a swap or a restart.

pub mod checkpoint;

use std::collections::HashMap;

use crate::Timestamp;
use crate::window::WindowIndex;

/// Names one window: its key and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    /// The key all its events share.
    pub key: String,
    /// Its index (see [`WindowIndex`]).
    pub index: WindowIndex,
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// First instant in it.
    pub start: Timestamp,
    /// First instant after it.
    pub end: Timestamp,
    /// Events folded in.
    pub count: u64,
    /// The accumulator; `None` until an event has been folded in.
    pub acc: Option<Vec<u8>>,
}

/// All open windows.
#[derive(Debug, Default)]
pub struct WindowStore {
    open: HashMap<WindowId, OpenWindow>,
}

impl WindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The window, if open.
    pub fn get(&self, id: &WindowId) -> Option<&OpenWindow> {
        self.open.get(id)
    }

    /// Stores a window's new accumulator after a fold of `folded` events.
    pub fn absorb(&mut self, id: WindowId, start: Timestamp, end: Timestamp, acc: Vec<u8>, folded: u64) {
        let window = self.open.entry(id).or_insert(OpenWindow { start, end, count: 0, acc: None });
        window.acc = Some(acc);
        window.count += folded;
    }

    /// Removes and returns the windows `due` says should close, ordered by
    /// start, then key, then index, so output is deterministic.
    pub fn close_where(&mut self, mut due: impl FnMut(&WindowId, &OpenWindow) -> bool) -> Vec<(WindowId, OpenWindow)> {
        let ids: Vec<WindowId> = self.open.iter().filter(|(id, w)| due(id, w)).map(|(id, _)| id.clone()).collect();
        let mut closed: Vec<_> = ids.into_iter().filter_map(|id| self.open.remove_entry(&id)).collect();
        closed.sort_by(|(a, wa), (b, wb)| (wa.start, &a.key, a.index).cmp(&(wb.start, &b.key, b.index)));
        closed
    }

    /// Every open window, for a checkpoint.
    pub fn iter(&self) -> impl Iterator<Item = (&WindowId, &OpenWindow)> {
        self.open.iter()
    }

    /// Every open window's accumulator, to rewrite in place (a migration).
    pub fn accs_mut(&mut self) -> impl Iterator<Item = &mut Vec<u8>> {
        self.open.values_mut().filter_map(|w| w.acc.as_mut())
    }

    /// Puts back a window from a checkpoint.
    pub fn restore(&mut self, id: WindowId, window: OpenWindow) {
        self.open.insert(id, window);
    }

    /// How many windows are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str, index: i64) -> WindowId {
        WindowId { key: key.to_owned(), index }
    }

    #[test]
    fn absorbs_and_closes_in_order() {
        let mut store = WindowStore::new();
        store.absorb(id("b", 0), Timestamp(0), Timestamp(10), vec![1], 2);
        store.absorb(id("a", 1), Timestamp(10), Timestamp(20), vec![2], 1);
        store.absorb(id("a", 0), Timestamp(0), Timestamp(10), vec![3], 1);
        store.absorb(id("a", 0), Timestamp(0), Timestamp(10), vec![4], 2);
        assert_eq!(store.get(&id("a", 0)).unwrap().count, 3);
        assert_eq!(store.get(&id("a", 0)).unwrap().acc, Some(vec![4]));
        let closed = store.close_where(|_, w| w.end <= Timestamp(10));
        let order: Vec<_> = closed.iter().map(|(id, _)| (id.key.as_str(), id.index)).collect();
        assert_eq!(order, [("a", 0), ("b", 0)]);
        assert_eq!(store.len(), 1);
    }
}
