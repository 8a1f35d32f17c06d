//! Concurrency: threads committing, finding, deleting and cleaning over shared and private
//! tokens, checking per-token histories; the overwrite-while-reading case; the bounded
//! expiry index. Sizes are small enough for a 2-core CI machine in debug builds; the heavy
//! versions live in `tests/stress.rs` (ignored by default).

mod common;

use memstore::{Clock, ManualClock, MemStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Duration;

fn encode(writer: u64, seq: u64) -> Vec<u8> {
    let mut v = writer.to_le_bytes().to_vec();
    v.extend_from_slice(&seq.to_le_bytes());
    v
}

fn decode(b: &[u8]) -> (u64, u64) {
    assert_eq!(b.len(), 16, "torn or foreign data: {b:?}");
    (
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u64::from_le_bytes(b[8..].try_into().unwrap()),
    )
}

fn store(clock: &ManualClock, shards: usize) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .shards(shards)
        .cleanup_interval(Duration::ZERO)
        .build()
}

const WRITERS: u64 = 3;
const READERS: u64 = 2;
const PRIVATE: u64 = 32;
const SHARED: u64 = 16;
const ROUNDS: u64 = 3_000;

/// Writers own private tokens and share hot ones, writing increasing sequence numbers; they
/// also churn short-lived tokens through commit and delete. Readers check that no token that
/// is committed and never deleted is ever missed, and that per (token, writer) the sequence
/// never goes backwards. A cleaner sweeps while a ticker moves the clock.
fn histories(shards: usize) {
    let clock = common::clock();
    let m = store(&clock, shards);
    let hour = Duration::from_secs(3600);
    for w in 0..WRITERS {
        for k in 0..PRIVATE {
            m.commit(&format!("p{w}-{k}"), encode(w, 0), clock.now() + hour)
                .unwrap();
        }
    }
    for k in 0..SHARED {
        m.commit(&format!("s{k}"), encode(0, 0), clock.now() + hour)
            .unwrap();
    }
    let done = AtomicBool::new(false);
    let misses = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let start = Barrier::new((WRITERS + READERS + 2) as usize);
    std::thread::scope(|s| {
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (m, clock, start) = (&m, &clock, &start);
            writers.push(s.spawn(move || {
                start.wait();
                for seq in 1..=ROUNDS {
                    let exp = clock.now() + hour;
                    m.commit(&format!("p{w}-{}", seq % PRIVATE), encode(w, seq), exp)
                        .unwrap();
                    m.commit(&format!("s{}", seq % SHARED), encode(w, seq), exp)
                        .unwrap();
                    let eph = format!("e{w}-{}", seq % 8);
                    m.commit(&eph, encode(w, seq), clock.now() + Duration::from_secs(1))
                        .unwrap();
                    if seq % 3 == 0 {
                        m.delete(&eph);
                    }
                }
            }));
        }
        for _ in 0..READERS {
            let (m, done, misses, reads, start) = (&m, &done, &misses, &reads, &start);
            s.spawn(move || {
                start.wait();
                let mut seen: HashMap<(String, u64), u64> = HashMap::new();
                let mut check = |token: String| match m.find(&token) {
                    None => {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(b) => {
                        let (w, seq) = decode(&b);
                        let last = seen.entry((token, w)).or_insert(0);
                        assert!(seq >= *last, "went backwards: {seq} after {last}");
                        *last = seq;
                    }
                };
                let mut i = 0u64;
                while !done.load(Ordering::Relaxed) {
                    check(format!("p{}-{}", i % WRITERS, i % PRIVATE));
                    check(format!("s{}", i % SHARED));
                    // Ephemeral tokens may be absent; when present, their data is whole.
                    if let Some(b) = m.find(&format!("e{}-{}", i % WRITERS, i % 8)) {
                        decode(&b);
                    }
                    reads.fetch_add(2, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        {
            let (m, done, start) = (&m, &done, &start);
            s.spawn(move || {
                start.wait();
                while !done.load(Ordering::Relaxed) {
                    m.cleanup_now();
                    std::thread::yield_now();
                }
            });
        }
        {
            let (clock, done, start) = (&clock, &done, &start);
            s.spawn(move || {
                start.wait();
                while !done.load(Ordering::Relaxed) {
                    clock.advance(Duration::from_millis(250));
                    std::thread::yield_now();
                }
            });
        }
        // Writers finish; then stop the others.
        for w in writers.drain(..) {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "a live session was missed"
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    // Quiescent: every private and shared token holds its writer's last sequence.
    for w in 0..WRITERS {
        for k in 0..PRIVATE {
            let last = (1..=ROUNDS).rev().find(|s| s % PRIVATE == k).unwrap_or(0);
            assert_eq!(decode(&m.find(&format!("p{w}-{k}")).unwrap()), (w, last));
        }
    }
    m.check_invariants().unwrap();
    // Everything expires eventually and cleanup reclaims it all, leaving nothing behind.
    clock.advance(Duration::from_secs(10 * 3600));
    m.cleanup_now();
    m.cleanup_now();
    assert_eq!(m.len(), 0);
    assert_eq!(m.stats().expiry_entries, 0);
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
    let clock = common::clock();
    let m = store(&clock, 4);
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
