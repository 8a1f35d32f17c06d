//! Concurrency: threads committing, finding, deleting and cleaning over shared and private
//! tokens, checking per-token histories; the overwrite-while-reading case; the bounded
//! expiry index. Sizes are small enough for a 2-core CI machine in debug builds; the heavy
//! versions live in `tests/stress.rs` (ignored by default).

mod common;

use common::histories::{self, decode, encode, store, Config};
use memsession::Clock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn histories(shards: usize) {
    let report = histories::run(&Config {
        shards,
        writers: 3,
        readers: 2,
        rounds: 3_000,
        until: None,
    });
    assert_eq!(report.misses, 0, "a live session was missed: {report:?}");
    assert!(report.reads > 0);
}

#[test]
fn per_token_histories_one_shard() {
    histories(1);
}

#[test]
fn per_token_histories_many_shards() {
    histories(64);
}

/// 16 hot tokens overwritten continuously by two threads while two others read them: zero
/// misses (crossbeam-skiplist's `insert` would miss some: crossbeam #1023).
#[test]
fn overwrite_while_reading_never_misses() {
    overwrite_while_reading(4); // the skiplist token index
}

/// The same over one shard: the hash token index where the build has it
/// (`common::token_index_for`).
#[test]
fn overwrite_while_reading_never_misses_one_shard() {
    overwrite_while_reading(1);
}

fn overwrite_while_reading(shards: usize) {
    let clock = common::clock();
    let m = store(&clock, shards);
    let exp = clock.now() + Duration::from_secs(3600);
    for k in 0..16 {
        m.commit(&format!("hot{k}"), encode(0, 0), exp).unwrap();
    }
    let done = AtomicBool::new(false);
    let misses = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let m = &m;
                s.spawn(move || {
                    for seq in 0..50_000u64 {
                        m.commit(&format!("hot{}", seq % 16), encode(w, seq), exp)
                            .unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            let (m, done, misses, reads) = (&m, &done, &misses, &reads);
            s.spawn(move || {
                let mut i = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let hit = m.find_with(&format!("hot{}", i % 16), decode).is_some();
                    if !hit {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 1000);
    assert_eq!(misses.load(Ordering::Relaxed), 0);
    assert_eq!(m.len(), 16);
    m.check_invariants().unwrap();
}

/// 1M overwrites spread over 1k tokens by two threads, deadlines moving later as the clock
/// advances: the expiry index keeps one entry per token (not one per version), before and
/// after cleanup reschedules them.
#[test]
fn expiry_index_stays_bounded_under_overwrites() {
    let clock = common::clock();
    let m = store(&clock, 16);
    let ops = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (m, clock, ops) = (&m, &clock, &ops);
            s.spawn(move || {
                for i in 0..500_000u64 {
                    let exp = clock.now() + Duration::from_secs(1800);
                    m.commit(&format!("tok{}", (i * 7 + t) % 1000), encode(t, i), exp)
                        .unwrap();
                    if i % 1000 == 0 {
                        clock.advance(Duration::from_secs(1));
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(ops.load(Ordering::Relaxed), 1_000_000);
    let stats = m.stats();
    assert_eq!(stats.sessions, 1000);
    assert!(
        stats.expiry_entries <= 1000 + 2,
        "expiry index grew to {} for 1000 sessions",
        stats.expiry_entries
    );
    assert!(m.check_invariants().unwrap() <= 2);
    // Past the first deadlines (start + 1800 s; the clock moved ~1000 s during the run) but
    // before the last ones: cleanup reschedules instead of reclaiming.
    clock.advance(Duration::from_secs(900));
    assert_eq!(m.cleanup_now(), 0);
    assert!(m.stats().rescheduled > 0);
    assert_eq!(m.len(), 1000);
    assert!(m.stats().expiry_entries <= 1000 + 2);
    m.check_invariants().unwrap();
}
