//! Soak: session traffic against one store for a fixed time (default 600 s; `SOAK_SECS`),
//! cleanup every second, deadlines from the store's clock (the system clock). Every 10 s
//! (`SOAK_EVERY`) prints live sessions, expiry index size, sessions reclaimed and RSS as a
//! CSV row on stdout; BENCHMARKS.md has the table.
//!
//! The traffic is a working set that moves on, so sessions do expire: each thread logs in
//! `RATE` new sessions a second (real time, however fast the machine), and a session is
//! visited (read, its idle deadline extended) for `VISIT` after its login. Then its visit
//! ends: one in five logs out (a delete), the others are abandoned, untouched from then on,
//! and expire `IDLE` after their last request; cleanup must reclaim them. One write in
//! twenty shortens a deadline to `IDLE / 2` (it files an earlier expiry entry and drops the
//! one it replaces); cleanup reschedules the entries of sessions whose deadline moved later.
//!
//! Steady state: live sessions about 2 threads x `RATE` x (`VISIT` + 4/5 `IDLE`) (a fifth log
//! out) plus a cleanup interval's worth, the expiry index near live (one entry per session
//! plus any stale ones in flight), RSS flat after warm-up. After the run the load stops and
//! the example waits for every session to expire: cleanup must empty the store and its
//! expiry index. It checks, and exits non-zero if one fails: sessions were reclaimed, the
//! expiry index stayed within 1.5x live after warm-up, and the store drained.
//!
//! `cargo run --release --example soak` (`SOAK_SECS=30 SOAK_EVERY=2` for a quick run)

use memsession::MemStore;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const THREADS: u64 = 2;
/// New sessions a second, per thread.
const RATE: u64 = 10_000;
/// How long after its login a session gets requests.
const VISIT: Duration = Duration::from_secs(3);
/// The idle timeout: each request moves the deadline to now + `IDLE`.
const IDLE: Duration = Duration::from_secs(5);
/// The expiry index may hold at most this many entries per live session after warm-up.
const MAX_ENTRIES_PER_LIVE: f64 = 1.5;

fn rss_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (pages * 4096) >> 20
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Sessions a thread has logged in `elapsed` after the start.
fn logins_by(elapsed: Duration) -> u64 {
    (elapsed.as_secs_f64() * RATE as f64) as u64
}

fn token(buf: &mut String, thread: u64, id: u64) -> &str {
    buf.clear();
    let _ = write!(buf, "session-{thread}-{id:016x}");
    buf
}

/// One thread's traffic until `stop`: logins on schedule, requests to the sessions whose
/// visit is on, a logout or an abandonment when a visit ends.
fn traffic(store: &MemStore, t: u64, start: Instant, stop: &AtomicBool, ops: &AtomicU64) {
    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xD1B5_4A32_D192_ED69);
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let (mut logged_in, mut ended) = (0u64, 0u64);
    let mut buf = String::new();
    while !stop.load(Ordering::Relaxed) {
        let elapsed = start.elapsed();
        while logged_in < logins_by(elapsed) {
            let expiry = store.now() + IDLE;
            let data = vec![1u8; 128];
            store
                .commit(token(&mut buf, t, logged_in), data, expiry)
                .unwrap();
            logged_in += 1;
        }
        let visits_over = logins_by(elapsed.saturating_sub(VISIT)).min(logged_in);
        while ended < visits_over {
            if ended % 5 == 0 {
                store.delete(token(&mut buf, t, ended)); // logout
            } // else abandoned: nothing touches it again, it expires IDLE from now
            ended += 1;
        }
        let active = logged_in - ended;
        if active == 0 {
            std::thread::yield_now();
            continue;
        }
        for _ in 0..256 {
            let r = next();
            let id = ended + r % active;
            let token = token(&mut buf, t, id);
            match (r >> 32) % 20 {
                0..=13 => {
                    let _ = store.find_with(token, |d| d.len());
                }
                14..=17 => {
                    store.touch(token, store.now() + IDLE).unwrap();
                }
                18 => {
                    store
                        .commit(token, vec![2u8; 128], store.now() + IDLE)
                        .unwrap();
                }
                _ => {
                    // A shorter deadline (say, after a sensitive action): a stale entry.
                    store
                        .commit(token, vec![3u8; 128], store.now() + IDLE / 2)
                        .unwrap();
                }
            }
        }
        ops.fetch_add(256, Ordering::Relaxed);
    }
}

fn main() {
    let secs = env_u64("SOAK_SECS", 600);
    let every = env_u64("SOAK_EVERY", 10).max(1);
    let store = MemStore::with_cleanup_interval(Duration::from_secs(1));
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let warm_up = VISIT + IDLE + Duration::from_secs(2);
    let expected_live = (THREADS * RATE) as f64 * (VISIT + IDLE * 4 / 5).as_secs_f64();
    eprintln!(
        "soak: {secs} s, {THREADS} threads x {RATE} logins/s, visits of {VISIT:?}, idle \
         timeout {IDLE:?}; expect about {expected_live:.0} live sessions after {warm_up:?}"
    );
    let start = Instant::now();
    let mut max_ratio = 0f64;
    println!("secs,ops,live,expiry_entries,reclaimed,rss_mib");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, stop, ops) = (&store, &stop, &ops);
            s.spawn(move || traffic(store, t, start, stop, ops));
        }
        let mut next = every;
        while start.elapsed() < Duration::from_secs(secs) {
            // The sampler wakes once a second: real time is what a soak measures.
            std::thread::sleep(Duration::from_secs(1));
            let el = start.elapsed();
            let st = store.stats();
            if el >= warm_up && st.sessions > 0 {
                max_ratio = max_ratio.max(st.expiry_entries as f64 / st.sessions as f64);
            }
            if el.as_secs() >= next {
                next += every;
                println!(
                    "{},{},{},{},{},{}",
                    el.as_secs(),
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

    // Drain: no more requests, so every session expires within IDLE; cleanup (every second)
    // must then leave nothing behind, in the store or in its expiry index.
    let loaded = store.stats();
    let drain_start = Instant::now();
    let mut st = loaded;
    while drain_start.elapsed() < IDLE + Duration::from_secs(3)
        && (st.sessions > 0 || st.expiry_entries > 0)
    {
        std::thread::sleep(Duration::from_millis(250));
        st = store.stats();
    }
    eprintln!(
        "at stop: live {}, expiry entries {}, reclaimed {}, stale entries dropped {}, \
         rescheduled {}; after {:.1} s without requests: live {}, expiry entries {}, \
         reclaimed {}",
        loaded.sessions,
        loaded.expiry_entries,
        loaded.reclaimed,
        loaded.stale_dropped,
        loaded.rescheduled,
        drain_start.elapsed().as_secs_f64(),
        st.sessions,
        st.expiry_entries,
        st.reclaimed
    );
    let mut failed = Vec::new();
    if loaded.reclaimed == 0 {
        failed.push("no session was reclaimed while the load ran".to_string());
    }
    if Duration::from_secs(secs) < warm_up {
        eprintln!("(expiry index: run shorter than the {warm_up:?} warm-up, not checked)");
    } else if max_ratio > MAX_ENTRIES_PER_LIVE {
        failed.push(format!(
            "the expiry index reached {max_ratio:.2}x live after warm-up (bound \
             {MAX_ENTRIES_PER_LIVE}x)"
        ));
    } else {
        eprintln!("expiry index after warm-up: at most {max_ratio:.2}x live");
    }
    if st.sessions > 0 || st.expiry_entries > 0 {
        failed.push(format!(
            "cleanup left {} sessions and {} expiry entries after every session expired",
            st.sessions, st.expiry_entries
        ));
    }
    if failed.is_empty() {
        eprintln!("soak: ok");
    } else {
        for f in &failed {
            eprintln!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}
