//! Flood (ignored by default; `.ci/run` runs it with `--ignored`): fresh sessions pour into a
//! store capped at 100k sessions (`MEMSTORE_FLOOD_SESSIONS`, default 10M). `len` never goes
//! above the cap plus the documented overshoot (one session per thread in flight), and the
//! resident memory stays flat once the store is full.

use memsession::{MemStore, WhenFull};
use std::time::{Duration, SystemTime};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
#[ignore = "flood: run with --ignored (CI does)"]
fn flood_stays_within_the_cap() {
    let total: u64 = std::env::var("MEMSTORE_FLOOD_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let cap = 100_000usize;
    let threads = 2u64;
    let store = MemStore::builder()
        .max_sessions(cap)
        .when_full(WhenFull::EvictSoonest)
        .cleanup_interval(Duration::ZERO)
        .build();
    let per_thread = total / threads;
    let payload = vec![7u8; 128];
    let mut rss_full = 0;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, payload) = (&store, &payload);
                s.spawn(move || {
                    let expiry = SystemTime::now() + Duration::from_secs(1800);
                    let mut max_len = 0;
                    let mut rss_at_full = 0;
                    for i in 0..per_thread {
                        // Later tokens expire later, so the soonest are the oldest.
                        let exp = expiry + Duration::from_micros(i);
                        store
                            .commit(&format!("{t}-{i}"), payload.clone(), exp)
                            .unwrap();
                        if i % 1024 == 0 {
                            let len = store.len();
                            max_len = max_len.max(len);
                            assert!(
                                len <= cap + threads as usize,
                                "len {len} over the cap {cap} + {threads} in flight"
                            );
                        }
                        if t == 0 && i == (cap as u64) * 2 {
                            rss_at_full = rss_bytes();
                        }
                    }
                    (max_len, rss_at_full)
                })
            })
            .collect();
        for h in handles {
            let (max_len, rss) = h.join().unwrap();
            assert!(max_len <= cap + threads as usize);
            rss_full = rss_full.max(rss);
        }
    });
    // Let the epoch reclaim what the last evictions retired.
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
    let rss_end = rss_bytes();
    let stats = store.stats();
    println!(
        "flood: {total} fresh sessions into a cap of {cap}: len {}, evicted {}, RSS {} MiB once full, {} MiB at the end",
        store.len(),
        stats.evicted,
        rss_full >> 20,
        rss_end >> 20
    );
    assert!(store.len() <= cap);
    assert_eq!(stats.evicted as usize + store.len(), total as usize);
    assert!(
        rss_end <= rss_full + (64 << 20),
        "RSS grew from {} MiB to {} MiB after the store was full",
        rss_full >> 20,
        rss_end >> 20
    );
    store.check_invariants().unwrap();
}
