//! One key's open windows, the first kept inline: most keys have one
//! window open, so a key's windows are two adjacent cache lines in the
//! store's table, not a line there and another behind a pointer. With
//! many keys each event reads its key's windows from memory; inline, both
//! lines are asked for at once instead of one after the other, and a key
//! costs 128 bytes instead of 32 and an allocation of 64 to 256.

use super::OpenWindow;
use crate::Timestamp;
use crate::window::WindowIndex;

/// A window. One cache line, aligned to one.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct Slot {
    pub(super) index: WindowIndex,
    pub(super) window: OpenWindow,
    /// While its events are held back from the fold: the hold round and
    /// the held group they are in (see [`super::WindowStore::hold`]).
    pub(super) held: (u32, u32),
}

impl Slot {
    // In place of the inline slot when the key has no window.
    const EMPTY: Slot = Slot { index: 0, window: OpenWindow { start: Timestamp(0), end: Timestamp(0), count: 0, acc: None }, held: (0, 0) };
}

/// A key's open windows, and the system time its earliest is due to close
/// as last scheduled (`i64::MAX`: none scheduled). The key's timer at that
/// time is its live one; any other it has is skipped when it comes up.
///
/// Its windows are numbered 0, 1, … like a vector's items, and removing
/// one moves the last into its place (as [`Vec::swap_remove`]).
#[derive(Debug)]
pub(super) struct KeyWindows {
    /// Window 0, when `len` > 0.
    first: Slot,
    /// Windows 1 on.
    more: Vec<Slot>,
    len: u32,
    pub(super) due: i64,
}

const _: () = assert!(std::mem::size_of::<KeyWindows>() == 128);

impl Default for KeyWindows {
    fn default() -> Self {
        KeyWindows { first: Slot::EMPTY, more: Vec::new(), len: 0, due: i64::MAX }
    }
}

impl KeyWindows {
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        (self.len > 0).then_some(&self.first).into_iter().chain(&self.more)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        (self.len > 0).then_some(&mut self.first).into_iter().chain(&mut self.more)
    }

    /// Window `i`.
    pub(super) fn get_mut(&mut self, i: usize) -> &mut Slot {
        assert!(i < self.len(), "window {i} of a key with {}", self.len);
        if i == 0 { &mut self.first } else { &mut self.more[i - 1] }
    }

    /// Window 1, if open: it is kept apart from the entry.
    pub(super) fn second(&self) -> Option<&Slot> {
        self.more.first()
    }

    /// The number of window `index`, if open.
    pub(super) fn position(&self, index: WindowIndex) -> Option<usize> {
        self.iter().position(|s| s.index == index)
    }

    /// Adds a window; gives its number.
    pub(super) fn push(&mut self, slot: Slot) -> usize {
        if self.len == 0 {
            self.first = slot;
        } else {
            // Most keys with a second window never have a third.
            if self.more.capacity() == 0 {
                self.more.reserve_exact(1);
            }
            self.more.push(slot);
        }
        self.len += 1;
        self.len() - 1
    }

    /// Removes window `i`; the last takes its number.
    pub(super) fn swap_remove(&mut self, i: usize) -> Slot {
        assert!(i < self.len(), "window {i} of a key with {}", self.len);
        self.len -= 1;
        if i == 0 {
            let last = self.more.pop().unwrap_or(Slot::EMPTY);
            std::mem::replace(&mut self.first, last)
        } else {
            self.more.swap_remove(i - 1)
        }
    }

    /// Removes every window.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = Slot> + '_ {
        let first = (self.len > 0).then(|| std::mem::replace(&mut self.first, Slot::EMPTY));
        self.len = 0;
        first.into_iter().chain(self.more.drain(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(index: WindowIndex) -> Slot {
        Slot { index, window: OpenWindow { start: Timestamp(index), end: Timestamp(index + 1), count: index as u64, acc: Some(vec![index as u8]) }, held: (0, 0) }
    }

    fn indexes(windows: &KeyWindows) -> Vec<WindowIndex> {
        windows.iter().map(|s| s.index).collect()
    }

    // Numbered, added and removed as a vector's items would be.
    #[test]
    fn windows_behave_as_a_vector_of_them() {
        let mut windows = KeyWindows::default();
        let mut model: Vec<WindowIndex> = Vec::new();
        // Pushes and removes at the front, the middle and the back.
        let steps: &[(bool, usize)] = &[(true, 0), (true, 0), (true, 0), (false, 0), (true, 0), (false, 1), (false, 1), (false, 0), (true, 0), (true, 0), (true, 0), (false, 2), (false, 0)];
        for (n, &(push, at)) in steps.iter().enumerate() {
            if push {
                assert_eq!(windows.push(slot(n as i64)), model.len());
                model.push(n as i64);
            } else {
                let removed = windows.swap_remove(at);
                assert_eq!((removed.index, removed.window.acc), (model[at], Some(vec![model[at] as u8])));
                model.swap_remove(at);
            }
            assert_eq!(indexes(&windows), model, "after step {n}");
            assert_eq!((windows.len(), windows.is_empty()), (model.len(), model.is_empty()));
            for (i, &index) in model.iter().enumerate() {
                assert_eq!(windows.position(index), Some(i));
                assert_eq!(windows.get_mut(i).index, index);
            }
        }
        let taken: Vec<WindowIndex> = windows.take_all().map(|s| s.index).collect();
        assert_eq!(taken, model);
        assert!(windows.is_empty() && windows.iter().next().is_none());
        assert_eq!(windows.position(model[0]), None);
    }
}
