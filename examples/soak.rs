//! Soak: churn against one store for a fixed time (default 600 s; `SOAK_SECS`), cleanup every
//! second on the real clock. Every 10 s prints live sessions, expiry index size and RSS as a
//! CSV row; BENCHMARKS.md plots the curve. Expected: RSS flat after warm-up, expiry index at
//! most the live sessions plus the stale entries in flight.
//!
//! `cargo run --release --example soak`

use memstore::MemStore;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn rss_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (pages * 4096) >> 20
}

fn main() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let store = MemStore::with_cleanup_interval(Duration::from_secs(1));
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let start = Instant::now();
    println!("secs,ops,live,expiry_entries,reclaimed,rss_mib");
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (store, stop, ops) = (&store, &stop, &ops);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // 200k tokens per thread, sessions of 2 to 10 s: steady state ~ a few
                    // hundred thousand live sessions, constantly expiring and renewed.
                    let token = format!("{t}-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 200_000);
                    let ttl = Duration::from_millis(2_000 + (i * 7) % 8_000);
                    match i % 10 {
                        0 => store.delete(&token),
                        1..=3 => {
                            store
                                .commit(&token, vec![1u8; 128], SystemTime::now() + ttl)
                                .unwrap();
                        }
                        _ => {
                            let _ = store.find_with(&token, |d| d.len());
                        }
                    }
                    i += 1;
                    if i % 1024 == 0 {
                        ops.fetch_add(1024, Ordering::Relaxed);
                    }
                }
            });
        }
        let mut next = 10;
        while start.elapsed() < Duration::from_secs(secs) {
            // The sampler wakes once a second: real time is what a soak measures.
            std::thread::sleep(Duration::from_secs(1));
            let el = start.elapsed().as_secs();
            if el >= next {
                next += 10;
                let st = store.stats();
                println!(
                    "{el},{},{},{},{},{}",
                    ops.load(Ordering::Relaxed),
                    st.sessions,
                    st.expiry_entries,
                    st.reclaimed,
                    rss_mib()
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
}
