//! A fold stage that lies about what it returns, for the host's contract
//! checks. It reads the `faulty` test plugin's events (`value`, `raw`) and
//! accumulators (`faulty-sum` v1: JSON count and sum) and folds them
//! honestly, except for a batch holding an event whose raw text contains
//! the configured `when`:
//!
//! - `mode = "short"`: one accumulator fewer than there are groups;
//! - `mode = "index"`: a failure whose index is past the end of the batch.
//!
//! It is written on raw wit-bindgen because the SDK cannot produce such
//! results. Only a wasm build exports anything (WIT export names do not
//! link natively).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "folder", path: "../../wit" });

use exports::weir::stream::fold::{FoldBatch, Folded, Guest};
use weir::stream::types::{Column, Failure, FieldSpec, FieldType, Identity, Schema};

struct Liar;

static mut CONFIG: (u8, String) = (0, String::new());

fn config() -> &'static (u8, String) {
    // SAFETY: a component instance is single-threaded; configure runs first.
    unsafe { &*std::ptr::addr_of!(CONFIG) }
}

// The number after `"name":` in a small JSON object.
fn number(json: &str, name: &str) -> f64 {
    json.split(&format!("\"{name}\":")).nth(1).and_then(|rest| rest.split([',', '}']).next()).and_then(|n| n.trim().parse().ok()).unwrap_or(0.0)
}

impl Guest for Liar {
    fn configure(config: String) -> Result<(), String> {
        let mode = if config.contains("\"short\"") {
            1
        } else if config.contains("\"index\"") {
            2
        } else {
            0
        };
        let when = config.split("\"when\"").nth(1).and_then(|rest| rest.split('"').nth(1)).unwrap_or("boom").to_owned();
        // SAFETY: as in `config`.
        unsafe { *std::ptr::addr_of_mut!(CONFIG) = (mode, when) };
        Ok(())
    }

    fn reads() -> Schema {
        let field = |name: &str, type_| FieldSpec { name: name.into(), type_, optional: false };
        Schema { name: "faulty".into(), version: 1, fields: vec![field("value", FieldType::Float), field("raw", FieldType::Text)] }
    }

    fn accumulator() -> Identity {
        Identity { name: "faulty-sum".into(), version: 1 }
    }

    fn fold(batch: FoldBatch) -> Folded {
        let (mode, when) = config();
        let column = |name: &str| batch.events.fields.iter().find(|f| f.name == name).map(|f| &f.values);
        let (Some(Column::Floats(values)), Some(Column::Texts(raws))) = (column("value"), column("raw")) else {
            return Folded { accs: vec![], failures: vec![] };
        };
        let mut accs = Vec::new();
        let mut start = 0usize;
        let mut lying = false;
        for group in &batch.groups {
            let (mut count, mut sum) = (0f64, 0f64);
            if let Some(acc) = &group.acc {
                let text = String::from_utf8_lossy(acc);
                count = number(&text, "count");
                sum = number(&text, "sum");
            }
            for i in start..group.end as usize {
                lying |= raws[i].contains(when.as_str());
                count += 1.0;
                sum += values[i];
            }
            start = group.end as usize;
            accs.push(format!("{{\"count\":{count},\"sum\":{sum:?}}}").into_bytes());
        }
        let mut failures = Vec::new();
        if lying {
            match mode {
                1 => {
                    accs.pop();
                }
                2 => failures.push(Failure { index: batch.events.count + 7, reason: "an index past the batch".into() }),
                _ => {}
            }
        }
        Folded { accs, failures }
    }

    fn migrate(_from: Identity, accs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        Ok(accs)
    }
}

export!(Liar);
