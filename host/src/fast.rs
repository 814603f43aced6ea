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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and cannot fault;
    // the address comes from a live reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
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
