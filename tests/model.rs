//! Differential testing: random operation sequences applied to memstore and to a `BTreeMap`
//! model (`common::model`), asserting identical observable results at every step.

mod common;

use common::model::{Op, Pair};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let t = 0u8..6;
    prop_oneof![
        4 => (t.clone(), proptest::collection::vec(any::<u8>(), 0..8), prop_oneof![Just(0u32), 1u32..5_000])
            .prop_map(|(t, data, ttl_ms)| Op::Commit { t, data, ttl_ms }),
        1 => (t.clone(), 0u32..5_000).prop_map(|(t, ms)| Op::CommitPast { t, ms }),
        4 => t.clone().prop_map(|t| Op::Find { t }),
        2 => t.prop_map(|t| Op::Delete { t }),
        1 => Just(Op::All),
        1 => Just(Op::Len),
        2 => Just(Op::Cleanup),
        3 => (0u32..3_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u32..3_000).prop_map(|ms| Op::JumpBack { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memstore_matches_the_model(ops in proptest::collection::vec(op(), 1..120), shards in prop_oneof![Just(1usize), Just(8)], collide in any::<bool>()) {
        let mut pair = Pair::new(shards, collide);
        for op in &ops {
            pair.apply(op);
        }
        pair.finish();
    }
}
