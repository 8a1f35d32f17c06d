//! Differential fuzzing: random operation sequences applied to memstore and to a `BTreeMap`
//! model, the same model as the proptest in `tests/model.rs`. Run with
//! `cargo +nightly fuzz run model -- -runs=1000000` from the repository root.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Op, Pair};

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    let t = u.int_in_range(0..=7u8)?;
    Ok(match u.int_in_range(0..=8u8)? {
        0 | 1 => Op::Commit {
            t,
            data: {
                let n = u.int_in_range(0..=8usize)?;
                u.bytes(n)?.to_vec()
            },
            ttl_ms: if u.ratio(1, 8)? { 0 } else { u.int_in_range(1..=5_000)? },
        },
        2 => Op::CommitPast {
            t,
            ms: u.int_in_range(0..=5_000)?,
        },
        3 => Op::Find { t },
        4 => Op::Delete { t },
        5 => {
            if u.arbitrary()? {
                Op::All
            } else {
                Op::Len
            }
        }
        6 => Op::Cleanup,
        7 => Op::Advance {
            ms: u.int_in_range(0..=3_000)?,
        },
        _ => Op::JumpBack {
            ms: u.int_in_range(0..=3_000)?,
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let shards = if u.arbitrary().unwrap_or(false) { 1 } else { 8 };
    let collide = u.arbitrary().unwrap_or(false);
    let mut pair = Pair::new(shards, collide);
    while let Ok(op) = op(&mut u) {
        pair.apply(&op);
        if u.is_empty() {
            break;
        }
    }
    pair.finish();
});
