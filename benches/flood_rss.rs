//! The byte bound in real memory: a flood of fresh sessions of random sizes (0 to 8 KiB of
//! data, random lifetimes) from 2 threads for 20 s into a store with `max_bytes` 64 MiB
//! (the default policy, evict-soonest). Prints the resident memory before, at the end and
//! at its peak, beside what the store counts (`Stats::bytes`, `Stats::charged_bytes`), and
//! the growth as a multiple of `max_bytes`.
//!
//! `cd benches && CARGO_TARGET_DIR=../target cargo run --release --bin flood_rss -- [--secs S]
//! [--max-mib M] [--threads T] [--max-data B] [--max-life-secs L] [--collect-ms C]`
//!
//! `--collect-ms C` adds a thread that pins the epoch and flushes every C ms, so memory that
//! evictions retired is freed sooner than the flood's own pins would: what that changes in
//! the RSS is garbage waiting for the epoch. The last line, RSS after the store is dropped
//! (and the epoch flushed), is what the allocator kept for itself.
//!
//! RSS is read from `/proc/self/statm` (resident pages) and the peak from `/proc/self/status`
//! (`VmHWM`): Linux only; elsewhere they read 0.

use bytes::Bytes;
use memsession::MemStore;
use memsession_benches::{peak_rss, rss};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

const MIB: f64 = (1 << 20) as f64;

struct Opts {
    secs: u64,
    max_mib: usize,
    threads: usize,
    max_data: usize,
    max_life_secs: u64,
    collect_ms: Option<u64>,
}

fn opts() -> Result<Opts, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Opts {
        secs: 20,
        max_mib: 64,
        threads: 2,
        max_data: 8 * 1024,
        max_life_secs: 600,
        collect_ms: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("secs") => o.secs = p.value()?.parse()?,
            Long("max-mib") => o.max_mib = p.value()?.parse()?,
            Long("threads") => o.threads = p.value()?.parse()?,
            Long("max-data") => o.max_data = p.value()?.parse()?,
            Long("max-life-secs") => o.max_life_secs = p.value()?.parse()?,
            Long("collect-ms") => o.collect_ms = Some(p.value()?.parse()?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("flood_rss: {e}");
            std::process::exit(2);
        }
    };
    let max_bytes = o.max_mib << 20;
    // One buffer the data is copied from, an exact `Bytes` per commit (as a server's request
    // body would be).
    let source = vec![0x5au8; o.max_data];
    let store = MemStore::builder().max_bytes(max_bytes).build();
    let before = rss();
    let stop = AtomicBool::new(false);
    let commits = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..o.threads {
            let (store, source, stop, commits) = (&store, &source, &stop, &commits);
            let max_life = o.max_life_secs.max(1);
            s.spawn(move || {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(t as u64 + 1);
                let mut token = String::with_capacity(32);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    token.clear();
                    use std::fmt::Write as _;
                    let _ = write!(token, "flood-{t}-{n:016x}");
                    let len = rng.random_range(0..=source.len());
                    let life = Duration::from_millis(rng.random_range(1_000..=max_life * 1000));
                    store
                        .commit(
                            &token,
                            Bytes::copy_from_slice(&source[..len]),
                            SystemTime::now() + life,
                        )
                        .expect("a flood commit");
                    n += 1;
                }
                commits.fetch_add(n, Ordering::Relaxed);
            });
        }
        if let Some(ms) = o.collect_ms {
            let stop = &stop;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    crossbeam_epoch::pin().flush();
                    std::thread::sleep(Duration::from_millis(ms));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(o.secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    let end = rss();
    let peak = peak_rss();
    let st = store.stats();
    let ratio = |b: usize| b.saturating_sub(before) as f64 / max_bytes as f64;
    println!(
        "flood_rss: {} threads, {:.1} s, {} commits, data 0..={} B, lifetimes 1..{} s, max_bytes {} MiB, epoch collector {:?} ms",
        o.threads,
        elapsed.as_secs_f64(),
        commits.load(Ordering::Relaxed),
        o.max_data,
        o.max_life_secs,
        o.max_mib,
        o.collect_ms
    );
    println!(
        "  store: sessions {}, bytes {:.1} MiB, charged_bytes {:.1} MiB ({:.3}x max_bytes), evicted {}, reclaimed {}",
        st.sessions,
        st.bytes as f64 / MIB,
        st.charged_bytes as f64 / MIB,
        st.charged_bytes as f64 / max_bytes as f64,
        st.evicted,
        st.reclaimed
    );
    println!(
        "  RSS: before {:.1} MiB, end {:.1} MiB, peak {:.1} MiB; growth {:.1} MiB = {:.2}x max_bytes (peak {:.2}x)",
        before as f64 / MIB,
        end as f64 / MIB,
        peak as f64 / MIB,
        end.saturating_sub(before) as f64 / MIB,
        ratio(end),
        ratio(peak)
    );
    drop(store);
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
    let kept = rss();
    println!(
        "  RSS after the store is dropped: {:.1} MiB ({:.1} MiB over before: kept by the allocator)",
        kept as f64 / MIB,
        kept.saturating_sub(before) as f64 / MIB
    );
}
