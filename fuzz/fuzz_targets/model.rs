//! Differential fuzzing: random operation sequences applied to memsession and to a `BTreeMap`
//! model, the same model as the proptest in `tests/model.rs`. Run with
//! `cargo +nightly fuzz run model -- -runs=1000000` from the repository root.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use memsession::WhenFull;

#[path = "../../tests/common/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Bounds, Op, Pair, MAX_DATA};

fn data(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=MAX_DATA)?;
    Ok(u.bytes(n)?.to_vec())
}

fn ttl(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(if u.ratio(1, 8)? {
        0
    } else {
        u.int_in_range(1..=5_000)?
    })
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    let t = u.int_in_range(0..=7u8)?;
    Ok(match u.int_in_range(0..=12u8)? {
        0 | 1 => Op::Commit {
            t,
            data: data(u)?,
            ttl_ms: ttl(u)?,
        },
        2 => Op::CommitPast {
            t,
            ms: u.int_in_range(0..=5_000)?,
        },
        3 => Op::CommitNew {
            t,
            data: data(u)?,
            ttl_ms: ttl(u)?,
        },
        4 => Op::CommitExisting {
            t,
            data: data(u)?,
            ttl_ms: ttl(u)?,
        },
        5 => Op::Touch { t, ttl_ms: ttl(u)? },
        6 => Op::Find { t },
        7 => Op::Expiry { t },
        8 => Op::Delete { t },
        9 => {
            if u.arbitrary()? {
                Op::All
            } else {
                Op::Len
            }
        }
        10 => Op::Cleanup,
        11 => Op::Advance {
            ms: u.int_in_range(0..=3_000)?,
        },
        _ => Op::JumpBack {
            ms: u.int_in_range(0..=3_000)?,
        },
    })
}

fn bounds(u: &mut Unstructured<'_>) -> Result<Bounds> {
    let when_full = if u.arbitrary()? {
        WhenFull::Refuse
    } else {
        WhenFull::EvictSoonest
    };
    let n = u.int_in_range(1..=4usize)?;
    Ok(match u.int_in_range(0..=3u8)? {
        0 | 1 => Bounds::None,
        2 => Bounds::Sessions { max: n, when_full },
        _ => Bounds::Bytes {
            sessions: n,
            when_full,
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let shards = if u.arbitrary().unwrap_or(false) { 1 } else { 8 };
    let collide = u.arbitrary().unwrap_or(false);
    let bounds = bounds(&mut u).unwrap_or(Bounds::None);
    let mut pair = Pair::with_bounds(shards, collide, bounds);
    while let Ok(op) = op(&mut u) {
        pair.apply(&op);
        if u.is_empty() {
            break;
        }
    }
    pair.finish();
});
