//! Differential testing: random operation sequences applied to memsession and to a `BTreeMap`
//! model (`common::model`), asserting identical observable results at every step: every
//! write (`commit`, `commit_new`, `commit_existing`, `touch`, `delete`), every read, cleanup,
//! clock jumps, and bounded stores (`max_sessions`, `max_bytes`; `Refuse` and
//! `EvictSoonest`).

mod common;

use common::model::{Bounds, Op, Pair};
use memsession::{Clock, MemStore, WhenFull};
use proptest::prelude::*;
use std::time::Duration;

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=common::model::MAX_DATA)
}

fn ttl() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0u32), 9 => 1u32..5_000]
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0u8..6;
    prop_oneof![
        4 => (t.clone(), data(), ttl()).prop_map(|(t, data, ttl_ms)| Op::Commit { t, data, ttl_ms }),
        1 => (t.clone(), 0u32..5_000).prop_map(|(t, ms)| Op::CommitPast { t, ms }),
        2 => (t.clone(), data(), ttl()).prop_map(|(t, data, ttl_ms)| Op::CommitNew { t, data, ttl_ms }),
        2 => (t.clone(), data(), ttl()).prop_map(|(t, data, ttl_ms)| Op::CommitExisting { t, data, ttl_ms }),
        2 => (t.clone(), ttl()).prop_map(|(t, ttl_ms)| Op::Touch { t, ttl_ms }),
        4 => t.clone().prop_map(|t| Op::Find { t }),
        1 => t.clone().prop_map(|t| Op::Expiry { t }),
        2 => t.prop_map(|t| Op::Delete { t }),
        1 => Just(Op::All),
        1 => Just(Op::Len),
        2 => Just(Op::Cleanup),
        3 => (0u32..3_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u32..3_000).prop_map(|ms| Op::JumpBack { ms }),
    ]
}

fn bounds(when_full: WhenFull) -> impl Strategy<Value = Bounds> {
    prop_oneof![
        (1usize..=4).prop_map(move |max| Bounds::Sessions { max, when_full }),
        (1usize..=4).prop_map(move |sessions| Bounds::Bytes {
            sessions,
            when_full
        }),
    ]
}

fn run(ops: &[Op], shards: usize, collide: bool, bounds: Bounds) {
    let mut pair = Pair::with_bounds(shards, collide, bounds);
    for op in ops {
        pair.apply(op);
    }
    pair.finish();
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..120)
}

fn shards() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(8)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memstore_matches_the_model(ops in ops(), shards in shards(), collide in any::<bool>()) {
        run(&ops, shards, collide, Bounds::None);
    }

    /// `max_sessions` with `WhenFull::Refuse`: the model predicts every refusal.
    #[test]
    fn a_refusing_session_bounded_store_matches_the_model(
        ops in ops(),
        shards in shards(),
        collide in any::<bool>(),
        max in 1usize..=4,
    ) {
        run(&ops, shards, collide, Bounds::Sessions { max, when_full: WhenFull::Refuse });
    }

    /// `max_bytes` with `WhenFull::Refuse`, including a refusal's sweep reclaiming the
    /// committing token's own expired session (the re-check must count what the token holds
    /// after the sweep, not before).
    #[test]
    fn a_refusing_byte_bounded_store_matches_the_model(
        ops in ops(),
        shards in shards(),
        collide in any::<bool>(),
        sessions in 1usize..=4,
    ) {
        run(&ops, shards, collide, Bounds::Bytes { sessions, when_full: WhenFull::Refuse });
    }

    /// `max_sessions` or `max_bytes` with `WhenFull::EvictSoonest`.
    #[test]
    fn an_evicting_bounded_store_matches_the_model(
        ops in ops(),
        shards in shards(),
        bounds in bounds(WhenFull::EvictSoonest),
    ) {
        run(&ops, shards, false, bounds);
    }

    /// The same with every token's hash colliding: eviction spares only the committer's own
    /// session, not every session that shares its hash.
    #[test]
    fn an_evicting_bounded_store_with_colliding_hashes_matches_the_model(
        ops in ops(),
        shards in shards(),
        bounds in bounds(WhenFull::EvictSoonest),
    ) {
        run(&ops, shards, true, bounds);
    }
}

/// One thread commits 50 sessions of 1 MiB into a store bounded to 10 MiB
/// (`EvictSoonest`): after every commit the store is within its bound, and holds the newest
/// sessions (each expires later than the one before).
#[test]
fn big_sessions_stay_within_max_bytes() {
    const MIB: usize = 1 << 20;
    let clock = common::clock();
    let store = MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .max_bytes(10 * MIB)
        .build();
    for i in 0..50u64 {
        let token = format!("s{i:02}");
        store
            .commit(
                &token,
                vec![0u8; MIB],
                clock.now() + Duration::from_secs(60 + i),
            )
            .unwrap();
        let s = store.stats();
        assert!(
            s.bytes <= 10 * MIB,
            "after {} commits of 1 MiB: {} bytes held ({:.1} MiB) in {} sessions, max 10 MiB",
            i + 1,
            s.bytes,
            s.bytes as f64 / MIB as f64,
            s.sessions
        );
        assert!(
            store.find(&token).is_some(),
            "the committed session was evicted"
        );
    }
    assert!(
        store.len() >= 9,
        "over-evicted: {} sessions left",
        store.len()
    );
}
