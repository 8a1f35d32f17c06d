//! A session workload against one store: threads log users in, read their sessions, extend
//! and log out, while the cleanup thread reclaims what expired. Prints what it did.
//!
//! `cargo run --release --example workload`

use memsession::{Clock, ManualClock, MemStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn main() {
    // Simulated time: one minute passes every 2,000 operations of thread 0.
    let clock = ManualClock::new(SystemTime::now());
    let store = MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::from_secs(60))
        .build();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (finds, hits, commits, deletes) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (store, clock) = (&store, &clock);
            let (finds, hits, commits, deletes) = (&finds, &hits, &commits, &deletes);
            s.spawn(move || {
                for i in 0..200_000u64 {
                    let token = format!(
                        "user-{t}-{}",
                        (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 5_000
                    );
                    match i % 20 {
                        0 => {
                            // log in / extend: 30 simulated minutes
                            let expiry = clock.now() + Duration::from_secs(30 * 60);
                            store
                                .commit(&token, format!("user {t}/{i}"), expiry)
                                .unwrap();
                            commits.fetch_add(1, Ordering::Relaxed);
                        }
                        1 => {
                            store.delete(&token);
                            deletes.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            finds.fetch_add(1, Ordering::Relaxed);
                            if store.find_with(&token, |d| d.len()).is_some() {
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if t == 0 && i % 2_000 == 0 {
                        clock.advance(Duration::from_secs(60)); // wakes the cleanup thread
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let stats = store.stats();
    let ops = finds.load(Ordering::Relaxed)
        + commits.load(Ordering::Relaxed)
        + deletes.load(Ordering::Relaxed);
    println!(
        "memstore workload: {threads} threads, {ops} operations in {elapsed:.2?} ({:.2} Mops/s)",
        ops as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "  finds {} (hits {}), commits {}, deletes {}",
        finds.load(Ordering::Relaxed),
        hits.load(Ordering::Relaxed),
        commits.load(Ordering::Relaxed),
        deletes.load(Ordering::Relaxed)
    );
    println!(
        "  live sessions {}, expiry index {}, cleanup passes {}, reclaimed {}, rescheduled {}",
        stats.sessions,
        stats.expiry_entries,
        stats.cleanup_passes,
        stats.reclaimed,
        stats.rescheduled
    );
    store.stop_cleanup();
}
