//! The hint table (`src/raw/hints.rs`) through the public API: it grows with the sessions
//! and keeps finding them, its memory is counted, deletes and cleanup leave no hint to a
//! dead session, and a store without it (the test hook) answers every operation alike.

mod common;

use common::{after, clock};
use memsession::{Builder, ManualClock, MemStore};
use std::time::Duration;

/// A store on `c` with no background cleanup, `shards` shards and the hint table on or off.
fn builder(c: &ManualClock, hints: bool, shards: usize) -> Builder {
    MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .shards(shards)
        .hint_table_for_tests(hints)
}

fn store(c: &ManualClock, hints: bool, shards: usize) -> MemStore {
    builder(c, hints, shards).build()
}

fn token(i: usize) -> String {
    format!("token-{i:08}")
}

#[test]
fn the_table_grows_counts_its_memory_and_leaves_no_dead_hints() {
    let c = clock();
    let m = store(&c, true, 2);
    let before = m.stats().hint_table_bytes;
    assert!(before > 0, "a skiplist store has a hint table");
    const N: usize = 20_000;
    for i in 0..N {
        m.commit(&token(i), format!("v{i}"), after(&c, 100 + (i % 50) as u64))
            .unwrap();
    }
    let grown = m.stats().hint_table_bytes;
    assert!(
        grown > before,
        "the table doubled as sessions came: {before} -> {grown}"
    );
    assert!(
        grown <= N * 64,
        "the table stays within a bucket line per session: {grown} bytes for {N}"
    );
    for i in 0..N {
        assert_eq!(m.find(&token(i)).unwrap(), format!("v{i}"));
    }
    // Overwrites, touches and deletes through the hints.
    for i in (0..N).step_by(2) {
        m.commit(&token(i), "w", after(&c, 200)).unwrap();
    }
    for i in (1..N).step_by(4) {
        m.delete(&token(i));
    }
    assert_eq!(m.dead_hints_for_tests(), 0, "a delete clears its hint");
    for i in 0..N {
        let want = match i % 4 {
            1 => None,
            _ if i % 2 == 0 => Some("w".to_string()),
            _ => Some(format!("v{i}")),
        };
        assert_eq!(
            m.find(&token(i))
                .map(|b| String::from_utf8(b.to_vec()).unwrap()),
            want
        );
    }
    // Cleanup reclaims through the same tombstone: no hint left to a reclaimed session.
    c.advance(Duration::from_secs(150));
    let reclaimed = m.cleanup_now();
    assert!(reclaimed > 0);
    assert_eq!(
        m.dead_hints_for_tests(),
        0,
        "cleanup clears what it reclaims"
    );
    assert_eq!(m.len(), N / 2, "the overwritten half lives to 200 s");
    m.check_invariants().unwrap();
}

/// A doubling moves the old table's hints a step per fresh commit, not all at once: while a
/// move is in progress both tables are counted and every session is still found, and a
/// cleanup pass finishes the move (the old table's memory goes).
#[test]
fn a_doubling_moves_hints_in_steps_and_cleanup_finishes_it() {
    let c = clock();
    let m = store(&c, true, 1); // one shard: its table's bytes are the store's
    let mut prev = m.stats().hint_table_bytes;
    let mut moving = None;
    for i in 0..20_000 {
        m.commit(&token(i), format!("v{i}"), after(&c, 100))
            .unwrap();
        let now = m.stats().hint_table_bytes;
        if now > 2 * prev {
            // The new table (twice the old) and the old one's buckets, still being moved
            // out of.
            moving = Some((i + 1, prev));
            break;
        }
        prev = now;
    }
    let (n, old) = moving.expect("a doubling left hints to move in a later step");
    for i in 0..n {
        assert_eq!(m.find(&token(i)).unwrap(), format!("v{i}"), "mid-move");
    }
    m.cleanup_now();
    assert_eq!(
        m.stats().hint_table_bytes,
        2 * old,
        "the pass finished the move"
    );
    for i in 0..n {
        assert_eq!(
            m.find(&token(i)).unwrap(),
            format!("v{i}"),
            "after the move"
        );
    }
    assert_eq!(m.dead_hints_for_tests(), 0);
    m.check_invariants().unwrap();
}

/// The same operations with and without the table give the same answers (a re-linked
/// token after a delete included: its old hint is dead, never "absent").
#[test]
fn with_and_without_the_table_alike() {
    let c = clock();
    let (a, b) = (store(&c, true, 2), store(&c, false, 2));
    assert_eq!(b.stats().hint_table_bytes, 0);
    for round in 0..3u64 {
        for i in 0..2_000 {
            let t = token(i);
            for m in [&a, &b] {
                match (i + round as usize) % 5 {
                    0 => m.delete(&t),
                    1 => {
                        let _ = m.commit_new(&t, "new", after(&c, 60 + round)).unwrap();
                    }
                    2 => {
                        let _ = m.touch(&t, after(&c, 90)).unwrap();
                    }
                    _ => m
                        .commit(&t, format!("r{round}"), after(&c, 30 + round))
                        .unwrap(),
                }
            }
            assert_eq!(a.find(&t), b.find(&t), "token {t}, round {round}");
        }
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(a.dead_hints_for_tests(), 0);
    a.check_invariants().unwrap();
}

/// Hints whose home bucket is full go to its buddy: fourteen tokens that hash alike (a home
/// and its buddy of seven ways each) are all found and overwritten, and deleting them leaves
/// no hint in either bucket (the clear looks in the buddy too).
#[test]
fn a_full_home_overflows_to_its_buddy_and_deletes_clear_both() {
    let c = clock();
    let m = builder(&c, true, 1).all_tokens_collide_for_tests().build();
    const N: usize = 14;
    for i in 0..N {
        m.commit(&token(i), format!("v{i}"), after(&c, 100))
            .unwrap();
    }
    for i in 0..N {
        m.commit(&token(i), format!("w{i}"), after(&c, 100))
            .unwrap();
        assert_eq!(m.find(&token(i)).unwrap(), format!("w{i}"));
    }
    for i in 0..N {
        m.delete(&token(i));
        assert_eq!(m.find(&token(i)), None);
    }
    assert_eq!(m.dead_hints_for_tests(), 0, "a hint left in the buddy");
    m.check_invariants().unwrap();
}
