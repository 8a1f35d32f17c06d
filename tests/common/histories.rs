//! The per-token history check shared by `tests/concurrency.rs` (small, always run) and
//! `tests/stress.rs` (time-bounded, ignored by default).
//!
//! Writers own private tokens and share hot ones, writing increasing sequence numbers; they
//! also churn short-lived tokens through commit and delete. Readers check that no token that
//! is committed and never deleted is ever missed, and that per (token, writer) the sequence
//! never goes backwards. A cleaner sweeps while a ticker moves the clock. At quiescence every
//! private token holds its writer's last sequence, the invariants hold, and cleanup reclaims
//! everything once all deadlines pass.

use memsession::{Clock, ManualClock, MemStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

pub fn encode(writer: u64, seq: u64) -> Vec<u8> {
    let mut v = writer.to_le_bytes().to_vec();
    v.extend_from_slice(&seq.to_le_bytes());
    v
}

pub fn decode(b: &[u8]) -> (u64, u64) {
    assert_eq!(b.len(), 16, "torn or foreign data: {b:?}");
    (
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u64::from_le_bytes(b[8..].try_into().unwrap()),
    )
}

/// A store of `shards` shards; an odd count takes the hash index where the build has it
/// (`super::token_index_for`).
pub fn store(clock: &ManualClock, shards: usize) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .shards(shards)
        .token_index(super::token_index_for(shards))
        .cleanup_interval(Duration::ZERO)
        .build()
}

pub struct Config {
    pub shards: usize,
    pub writers: u64,
    pub readers: u64,
    /// Each writer stops after this many rounds...
    pub rounds: u64,
    /// ...or at this instant, whichever comes first.
    pub until: Option<Instant>,
}

const PRIVATE: u64 = 32;
const SHARED: u64 = 16;

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub writes: u64,
    pub reads: u64,
    pub misses: u64,
}

/// What one writer wrote last: the sequence per private token, and per ephemeral slot the
/// sequence and the expiry it was committed with.
type Written = (HashMap<u64, u64>, HashMap<u64, (u64, SystemTime)>);

pub fn run(cfg: &Config) -> Report {
    let clock = super::clock();
    let m = store(&clock, cfg.shards);
    let hour = Duration::from_secs(3600);
    for w in 0..cfg.writers {
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
    let start = Barrier::new((cfg.writers + cfg.readers + 2) as usize);
    // Rounds done by each writer: the ticker moves the clock only as the slowest writer
    // progresses, so a private token is rewritten (every 32 rounds) long before its hour
    // runs out, however the threads are scheduled; a miss is then always a real miss.
    let progress: Vec<AtomicU64> = (0..cfg.writers).map(|_| AtomicU64::new(0)).collect();
    let mut last_written: Vec<Written> = Vec::new();
    std::thread::scope(|s| {
        let mut writers = Vec::new();
        for w in 0..cfg.writers {
            let (m, clock, start, progress) = (&m, &clock, &start, &progress);
            writers.push(s.spawn(move || {
                start.wait();
                let mut last = HashMap::new();
                let mut eph_last = HashMap::new();
                for seq in 1..=cfg.rounds {
                    if seq % 64 == 0 && cfg.until.is_some_and(|u| Instant::now() >= u) {
                        break;
                    }
                    let exp = clock.now() + hour;
                    let k = seq % PRIVATE;
                    m.commit(&format!("p{w}-{k}"), encode(w, seq), exp).unwrap();
                    last.insert(k, seq);
                    m.commit(&format!("s{}", seq % SHARED), encode(w, seq), exp)
                        .unwrap();
                    let eph = format!("e{w}-{}", seq % 8);
                    let eph_exp = clock.now() + Duration::from_secs(1);
                    m.commit(&eph, encode(w, seq), eph_exp).unwrap();
                    if seq % 3 == 0 {
                        m.delete(&eph);
                    }
                    eph_last.insert(seq % 8, (seq, eph_exp));
                    progress[w as usize].store(seq, Ordering::Relaxed);
                }
                (last, eph_last)
            }));
        }
        for _ in 0..cfg.readers {
            let (m, done, misses, reads, start) = (&m, &done, &misses, &reads, &start);
            let writers_n = cfg.writers;
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
                    check(format!("p{}-{}", i % writers_n, i % PRIVATE));
                    check(format!("s{}", i % SHARED));
                    // Ephemeral tokens may be absent; when present, their data is whole.
                    if let Some(b) = m.find(&format!("e{}-{}", i % writers_n, i % 8)) {
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
            let (clock, done, start, progress) = (&clock, &done, &start, &progress);
            s.spawn(move || {
                start.wait();
                // At most 250 ms of clock per 2 rounds of the slowest writer: 4 s per 32.
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let slowest = progress.iter().map(|p| p.load(Ordering::Relaxed)).min();
                    if slowest.unwrap_or(0) >= seen + 2 {
                        seen = slowest.unwrap_or(0);
                        clock.advance(Duration::from_millis(250));
                    }
                    std::thread::yield_now();
                }
            });
        }
        for w in writers {
            last_written.push(w.join().unwrap());
        }
        done.store(true, Ordering::Relaxed);
    });
    // Quiescent: every private token holds its writer's last sequence.
    let mut writes = 0;
    for (w, (last, _)) in last_written.iter().enumerate() {
        let w = w as u64;
        for k in 0..PRIVATE {
            let want = last.get(&k).copied().unwrap_or(0);
            writes += want / PRIVATE;
            assert_eq!(decode(&m.find(&format!("p{w}-{k}")).unwrap()), (w, want));
        }
    }
    m.check_invariants().unwrap();
    // len is exact: every private and shared token, plus each ephemeral slot whose last
    // write was a commit that has not expired (a cleanup pass first reclaims the others).
    m.cleanup_now();
    let now = clock.now();
    let mut live_eph = 0;
    for (w, (_, eph)) in last_written.iter().enumerate() {
        for (slot, (seq, exp)) in eph {
            let live = seq % 3 != 0 && *exp > now;
            let found = m.find(&format!("e{w}-{slot}"));
            assert_eq!(
                found.map(|b| decode(&b)),
                live.then_some((w as u64, *seq)),
                "ephemeral e{w}-{slot}"
            );
            live_eph += usize::from(live);
        }
    }
    assert_eq!(
        m.len(),
        (cfg.writers * PRIVATE + SHARED) as usize + live_eph,
        "len() at quiescence"
    );
    // Everything expires eventually and cleanup reclaims it all, leaving nothing behind.
    clock.advance(Duration::from_secs(10 * 3600));
    m.cleanup_now();
    m.cleanup_now();
    assert_eq!(m.len(), 0);
    assert_eq!(m.stats().expiry_entries, 0);
    Report {
        writes,
        reads: reads.load(Ordering::Relaxed),
        misses: misses.load(Ordering::Relaxed),
    }
}
