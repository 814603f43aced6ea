//! Narrowing a failed call down to what caused it. When a call into a
//! plugin fails as a whole (a trap, a timeout, a memory overrun, a broken
//! contract), the batch is split in halves and each half tried again, down
//! to single items: only the items that fail alone are dead-lettered, and
//! the rest of the batch goes on. A poison record costs about log2(batch)
//! extra calls, each bounded by the call's time limit.

use std::ops::Range;

use super::CallError;

/// What a narrowed call gave: the results of the ranges that went through,
/// in order, and the items that failed alone with their error.
pub struct Narrowed<T> {
    /// Each range that succeeded, with its result.
    pub done: Vec<(Range<usize>, T)>,
    /// Each item that failed on its own.
    pub failed: Vec<(usize, CallError)>,
}

/// Retries items `0..len`, whose call as a whole failed with `first`, in
/// halves with `call` until every item succeeded or failed alone.
pub fn narrow<T>(len: usize, first: CallError, call: &mut dyn FnMut(Range<usize>) -> Result<T, CallError>) -> Narrowed<T> {
    let mut narrowed = Narrowed { done: Vec::new(), failed: Vec::new() };
    if len <= 1 {
        if len == 1 {
            narrowed.failed.push((0, first));
        }
        return narrowed;
    }
    let mid = len / 2;
    split(0..mid, call, &mut narrowed);
    split(mid..len, call, &mut narrowed);
    narrowed
}

fn split<T>(range: Range<usize>, call: &mut dyn FnMut(Range<usize>) -> Result<T, CallError>, narrowed: &mut Narrowed<T>) {
    if range.is_empty() {
        return;
    }
    match call(range.clone()) {
        Ok(result) => narrowed.done.push((range, result)),
        Err(err) if range.len() == 1 => narrowed.failed.push((range.start, err)),
        Err(_) => {
            let mid = range.start + range.len() / 2;
            split(range.start..mid, call, narrowed);
            split(mid..range.end, call, narrowed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::StageKind;

    fn trap() -> CallError {
        CallError::Trap { stage: StageKind::Fold, detail: "boom".into() }
    }

    #[test]
    fn only_the_poison_items_fail_and_the_rest_keeps_its_order() {
        let poison = [3usize, 4, 9];
        let mut calls = 0;
        let mut call = |r: Range<usize>| {
            calls += 1;
            if poison.iter().any(|p| r.contains(p)) { Err(trap()) } else { Ok(r.len()) }
        };
        let n = narrow(10, trap(), &mut call);
        assert_eq!(n.failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(), poison);
        let done: Vec<usize> = n.done.iter().flat_map(|(r, _)| r.clone()).collect();
        assert_eq!(done, [0, 1, 2, 5, 6, 7, 8]);
        assert!(calls <= 14, "{calls} calls");
    }

    #[test]
    fn a_single_item_fails_with_the_first_error() {
        let n = narrow::<()>(1, trap(), &mut |_| panic!("not called again"));
        assert_eq!(n.failed.len(), 1);
        assert!(n.done.is_empty());
    }
}
