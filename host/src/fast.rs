//! Hashing and keys for the per-key maps on the hot path. std's SipHash is
//! built to resist flooding with a per-process key; foldhash keeps a
//! per-process random seed but is several times faster on short keys.
//!
//! Map keys are [`Key`]s: a key of up to 23 bytes (most sensor and device
//! ids) sits inside the map's bucket, so a lookup compares it without
//! following a pointer to another cache line; a longer one is shared.

use std::collections::{HashMap, HashSet};

/// A hash map with foldhash's per-process seeded hasher.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set with foldhash's per-process seeded hasher.
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A window key as the per-key maps hold it: inline up to 23 bytes,
/// shared (cloned without copying) past that; hashes and compares as the
/// `str` it holds, so maps keyed by it are looked up with a `&str`.
pub type Key = smol_str::SmolStr;

/// Asks the memory for the cache line holding `value`, so that a read of
/// it a little later does not wait. A hint only: it changes nothing and
/// cannot fault; a no-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_at((value as *const T).cast());
}

/// Asks the memory for every cache line of `values`: a value larger than
/// a line, or not aligned to one, spans two or more, and [`prefetch`]
/// asks for the first only. A hint, as [`prefetch`] is.
#[inline(always)]
pub fn prefetch_lines<T>(values: &[T]) {
    const LINE: usize = 64;
    let (start, len) = (values.as_ptr().cast::<u8>(), std::mem::size_of_val(values));
    let mut offset = 0;
    while offset < len {
        prefetch_at(start.wrapping_add(offset));
        offset += LINE - (start.wrapping_add(offset) as usize % LINE);
    }
}

// The prefetch itself: `at` is never read, so it need not be valid.
#[inline(always)]
fn prefetch_at(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and cannot fault,
    // whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A 64-bit FNV-1a hash of `key`: the same in every process and every
/// version of weir, so it can be written into checkpoints.
pub fn stable_hash(key: &str) -> u64 {
    stable_hash_bytes(key.as_bytes())
}

/// [`stable_hash`] of a key's UTF-8 bytes.
pub fn stable_hash_bytes(key: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.iter().fold(OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stable_hash_is_fnv_1a() {
        // Reference values of FNV-1a 64.
        assert_eq!(super::stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
