//! Shared helpers: a manual clock at a fixed start, every store configuration that the
//! behaviour tests run over, and the reporting clock of the background-work tests
//! ([`test_clock`]).
#![allow(dead_code)]

pub mod histories;
pub mod model;
pub mod test_clock;

pub use model::{token_index_for, token_indexes};

use memsession::{Clock, ManualClock, MemStore};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The start of every manual clock in the tests.
pub const START: u64 = 1_700_000_000;

pub fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(START))
}

/// `secs` seconds after the clock's current time.
pub fn after(clock: &ManualClock, secs: u64) -> SystemTime {
    clock.now() + Duration::from_secs(secs)
}

/// A store on `clock` with no cleanup thread, for each token index and each shard layout
/// worth covering: one shard, the default, many, and every token's hash colliding (every
/// look-up walks the colliding keys by token).
pub fn configs(clock: &ManualClock) -> Vec<(String, MemStore)> {
    let layouts = [
        ("1 shard", Some(1), false),
        ("default shards", None, false),
        ("256 shards", Some(256), false),
        ("all tokens collide", Some(4), true),
    ];
    let mut out = Vec::new();
    for index in token_indexes() {
        for (name, shards, collide) in layouts {
            let mut b = MemStore::builder()
                .clock(clock.clone())
                .cleanup_interval(Duration::ZERO)
                .token_index(index);
            if let Some(n) = shards {
                b = b.shards(n);
            }
            if collide {
                b = b.all_tokens_collide_for_tests();
            }
            out.push((format!("{index:?}, {name}"), b.build()));
        }
    }
    out
}

/// Runs `f` over every configuration, each with a fresh clock, checking the store's
/// structural invariants afterwards.
pub fn for_each_config(f: impl Fn(&MemStore, &ManualClock)) {
    for i in 0..configs(&clock()).len() {
        let clock = clock();
        let (name, store) = configs(&clock).swap_remove(i);
        f(&store, &clock);
        if let Err(e) = store.check_invariants() {
            panic!("{name}: invariant broken: {e}");
        }
    }
}
