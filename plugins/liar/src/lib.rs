//! A fold stage that lies about what it returns, for the host's contract
//! checks. It reads the `faulty` test plugin's events and accumulators
//! (postcard: an event is key, value, raw text; an accumulator is count and
//! sum) and folds them honestly, except for a batch holding an event whose
//! raw text contains the configured `when`:
//!
//! - `mode = "short"`: one accumulator fewer than there are groups;
//! - `mode = "index"`: a failure whose index is past the end of the batch;
//! - `mode = "ends"`: accumulator ends that run past the data.
//!
//! It is written on raw wit-bindgen because the SDK cannot produce such
//! results. Only a wasm build exports anything (WIT export names do not
//! link natively).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "folder", path: "../../wit" });

use exports::weir::stream::fold::{FoldBatch, Folded, Guest};
use weir::stream::types::{Failure, Packed};

struct Liar;

static mut CONFIG: (u8, String) = (0, String::new());

fn config() -> &'static (u8, String) {
    // SAFETY: a component instance is single-threaded; configure runs first.
    unsafe { &*std::ptr::addr_of!(CONFIG) }
}

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn f64_at(bytes: &[u8], at: &mut usize) -> Option<f64> {
    let v = f64::from_le_bytes(bytes.get(*at..*at + 8)?.try_into().ok()?);
    *at += 8;
    Some(v)
}

// (value, raw text) of a faulty event.
fn event(bytes: &[u8]) -> Option<(f64, &[u8])> {
    let mut at = 0;
    let key_len = varint(bytes, &mut at)? as usize;
    at += key_len;
    let value = f64_at(bytes, &mut at)?;
    let raw_len = varint(bytes, &mut at)? as usize;
    Some((value, bytes.get(at..at + raw_len)?))
}

fn item(p: &Packed, i: usize) -> &[u8] {
    let start = if i == 0 { 0 } else { p.ends[i - 1] as usize };
    &p.data[start..p.ends[i] as usize]
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Guest for Liar {
    fn configure(config: String) -> Result<(), String> {
        let mode = if config.contains("\"short\"") {
            1
        } else if config.contains("\"index\"") {
            2
        } else if config.contains("\"ends\"") {
            3
        } else {
            0
        };
        let when = config.split("\"when\"").nth(1).and_then(|rest| rest.split('"').nth(1)).unwrap_or("boom").to_owned();
        // SAFETY: as in `config`.
        unsafe { *std::ptr::addr_of_mut!(CONFIG) = (mode, when) };
        Ok(())
    }

    fn state_version() -> u32 {
        1
    }

    fn fold(batch: FoldBatch) -> Folded {
        let (mode, when) = config();
        let mut accs = Packed { data: Vec::new(), ends: Vec::new() };
        let mut start = 0usize;
        let mut lying = false;
        for group in &batch.groups {
            let (mut count, mut sum) = (0u64, 0f64);
            if let Some(acc) = &group.acc {
                let mut at = 0;
                count = varint(acc, &mut at).unwrap_or(0);
                sum = f64_at(acc, &mut at).unwrap_or(0.0);
            }
            for i in start..group.end as usize {
                if let Some((value, raw)) = event(item(&batch.events, i)) {
                    lying |= raw.windows(when.len().max(1)).any(|w| w == when.as_bytes());
                    count += 1;
                    sum += value;
                }
            }
            start = group.end as usize;
            push_varint(&mut accs.data, count);
            accs.data.extend_from_slice(&sum.to_le_bytes());
            accs.ends.push(accs.data.len() as u32);
        }
        let mut failures = Vec::new();
        if lying {
            match mode {
                1 => {
                    accs.ends.pop();
                }
                2 => failures.push(Failure { index: batch.events.ends.len() as u32 + 7, reason: "an index past the batch".into() }),
                3 => {
                    if let Some(last) = accs.ends.last_mut() {
                        *last += 1000;
                    }
                }
                _ => {}
            }
        }
        Folded { accs, failures }
    }

    fn migrate(_from_version: u32, accs: Packed) -> Result<Packed, String> {
        Ok(accs)
    }
}

export!(Liar);
