//! Snapshot and restore: save and load rates, snapshot size, and what a save running in the
//! background does to a serving store (find latency, mixed throughput). BENCHMARKS.md has
//! the results.
//!
//! ```text
//! cd benches
//! cargo bench --bench snapshot                          # 1M and 10M sessions, 3 rounds
//! cargo bench --bench snapshot -- --quick               # a harness check: 100k, short
//! cargo bench --bench snapshot -- --sizes 1000000 --latency-sessions 1000000 --threads 1
//! cargo bench --bench snapshot --features mimalloc      # on mimalloc
//! ```

use hdrhistogram::Histogram;
use memsession::MemStore;
use memsession_benches::ALLOCATOR;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// With `--features mimalloc`, the stores allocate through mimalloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "\
snapshot: save and load rates, size, and a save's effect on a serving store

USAGE: cargo bench --bench snapshot -- [OPTIONS]

OPTIONS:
  --quick                 100k sessions, short windows, one round
  --sizes LIST            sessions saved and loaded (default 1000000,10000000)
  --latency-sessions N    sessions held during the latency run (default 1000000)
  --threads N             workload threads during the latency run (default 1)
  --rounds N              rounds of the latency run, with and without a save (default 3)
  --window-ms N           length of one latency window (default 2000)
  --dir DIR               where snapshot files go (default target/snapshot-bench)
  --skip LIST             parts to skip: rates,latency
  -h, --help              this text
";

const TOKEN_LEN: usize = 43;
const DATA_LEN: usize = 128;

struct Opts {
    sizes: Vec<usize>,
    latency_sessions: usize,
    threads: usize,
    rounds: usize,
    window: Duration,
    dir: PathBuf,
    skip: Vec<String>,
}

fn parse() -> Result<Opts, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Opts {
        sizes: vec![1_000_000, 10_000_000],
        latency_sessions: 1_000_000,
        threads: 1,
        rounds: 3,
        window: Duration::from_millis(2000),
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/snapshot-bench"),
        skip: Vec::new(),
    };
    let list = |s: String| -> Result<Vec<usize>, lexopt::Error> {
        s.split(',')
            .map(|x| x.trim().parse().map_err(|e| format!("{x}: {e}").into()))
            .collect()
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("quick") => {
                o.sizes = vec![100_000];
                o.latency_sessions = 100_000;
                o.rounds = 1;
                o.window = Duration::from_millis(300);
            }
            Long("sizes") => o.sizes = list(p.value()?.string()?)?,
            Long("latency-sessions") => o.latency_sessions = p.value()?.parse()?,
            Long("threads") => o.threads = p.value()?.parse()?,
            Long("rounds") => o.rounds = p.value()?.parse()?,
            Long("window-ms") => o.window = Duration::from_millis(p.value()?.parse()?),
            Long("dir") => o.dir = p.value()?.into(),
            Long("skip") => o.skip = p.value()?.string()?.split(',').map(str::to_owned).collect(),
            Long("bench") => {} // what `cargo bench` passes
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

/// `n` distinct 43-character base64url tokens (the shape of `generate_token`'s), from a
/// seeded generator: the CSPRNG would only slow the setup.
fn tokens(n: usize, seed: u64) -> Vec<String> {
    use base64::Engine as _;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let bytes: [u8; 32] = rng.random();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        })
        .collect()
}

/// A store holding `tokens`, each session expiring at its own time within the half hour
/// after the next one (as idle timeouts spread them), so that expiry order is unrelated to
/// token order, as in a server's snapshot.
fn filled(tokens: &[String]) -> MemStore {
    let store = MemStore::builder().cleanup_interval(Duration::ZERO).build();
    let base = SystemTime::now() + Duration::from_secs(3600);
    let data = vec![b'x'; DATA_LEN];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for t in tokens {
        let spread = Duration::from_millis(rng.random_range(0..30 * 60 * 1000));
        store.commit(t, data.clone(), base + spread).unwrap();
    }
    store
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.2}M/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn rates(o: &Opts) {
    println!(
        "## Save and load rates ({TOKEN_LEN}-byte tokens, {DATA_LEN}-byte data, {ALLOCATOR})\n"
    );
    println!("| sessions | commit (fill, 1 thread) | save to file | save to memory | load from file | load, bounded store (1 inserter) | read + check only | file size | size / (tokens+data+expiries) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &o.sizes {
        let toks = tokens(n, n as u64);
        let t = Instant::now();
        let store = filled(&toks);
        let fill = t.elapsed();
        drop(toks);
        let path = o.dir.join(format!("rates-{n}.snap"));
        let t = Instant::now();
        let saved = store.save(&path).unwrap();
        let save_file = t.elapsed();
        assert_eq!(saved.records as usize, n);
        let mut buf = Vec::with_capacity(saved.bytes as usize);
        let t = Instant::now();
        store.save_to(&mut buf).unwrap();
        let save_mem = t.elapsed();
        drop(buf);
        drop(store);
        let fresh = MemStore::builder().cleanup_interval(Duration::ZERO).build();
        let t = Instant::now();
        let loaded = fresh.load(&path).unwrap();
        let load = t.elapsed();
        assert_eq!(loaded.loaded as usize, n);
        drop(fresh);
        let bounded = MemStore::builder()
            .cleanup_interval(Duration::ZERO)
            .max_sessions(usize::MAX >> 2)
            .build();
        let t = Instant::now();
        let loaded = bounded.load(&path).unwrap();
        let load_bounded = t.elapsed();
        assert_eq!(loaded.loaded as usize, n);
        drop(bounded);
        // Every session expired by this store's clock: the load reads, checks and skips them
        // all, which is what a load costs besides its inserts.
        let late = MemStore::builder()
            .cleanup_interval(Duration::ZERO)
            .clock(memsession::ManualClock::new(
                SystemTime::now() + Duration::from_secs(10 * 3600),
            ))
            .build();
        let t = Instant::now();
        let skipped = late.load(&path).unwrap();
        let check_only = t.elapsed();
        assert_eq!(skipped.expired as usize, n);
        let payload = n * (TOKEN_LEN + DATA_LEN + 8);
        println!(
            "| {n} | {} | {} ({:.0} ms) | {} ({:.0} ms) | {} ({:.0} ms) | {} | {} | {:.1} MB | {:.3}x |",
            rate(n, fill),
            rate(n, save_file),
            save_file.as_secs_f64() * 1e3,
            rate(n, save_mem),
            save_mem.as_secs_f64() * 1e3,
            rate(n, load),
            load.as_secs_f64() * 1e3,
            rate(n, load_bounded),
            rate(n, check_only),
            saved.bytes as f64 / 1e6,
            saved.bytes as f64 / payload as f64
        );
        let _ = std::fs::remove_file(&path);
    }
    println!();
}

/// What runs beside the workload during a window.
#[derive(Clone, Copy)]
enum Beside<'a> {
    Nothing,
    /// Saves to this file, back to back.
    Saves(&'a PathBuf),
    /// A thread that only burns CPU (no memory traffic): the control, for what any busy
    /// thread costs the workload on this machine.
    Spin,
}

/// One window of the mixed workload (90% find, 10% overwrite) on `threads` threads, with
/// `beside` on one more thread; find latencies, total ops, saves done.
fn window(
    store: &MemStore,
    toks: &[String],
    threads: usize,
    len: Duration,
    beside: Beside<'_>,
) -> (Histogram<u64>, u64, u64) {
    let stop = AtomicBool::new(false);
    let expiry = SystemTime::now() + Duration::from_secs(3600);
    std::thread::scope(|s| {
        let stop_ref = &stop;
        let saver = match beside {
            Beside::Nothing => None,
            Beside::Saves(path) => Some(s.spawn(move || {
                let mut n = 0;
                while !stop_ref.load(Ordering::Relaxed) {
                    store.save(path).unwrap();
                    n += 1;
                }
                n
            })),
            Beside::Spin => Some(s.spawn(move || {
                let mut x = 1u64;
                while !stop_ref.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
                0
            })),
        };
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let stop = &stop;
                s.spawn(move || {
                    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
                    let mut rng = rand::rngs::SmallRng::seed_from_u64(w as u64 + 7);
                    let data = vec![b'y'; DATA_LEN];
                    let mut ops = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            let t = &toks[rng.random_range(0..toks.len())];
                            if rng.random_range(0..10) == 0 {
                                store.commit(t, data.clone(), expiry).unwrap();
                            } else {
                                let start = Instant::now();
                                let hit = store.find_with(t, |d| d.len());
                                let ns = start.elapsed().as_nanos() as u64;
                                assert_eq!(hit, Some(DATA_LEN));
                                h.record(ns.max(1)).unwrap();
                            }
                        }
                        ops += 256;
                    }
                    (h, ops)
                })
            })
            .collect();
        std::thread::sleep(len); // the measurement window (a bench, not a test)
        stop.store(true, Ordering::Relaxed);
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut ops = 0;
        for w in workers {
            let (h, n) = w.join().unwrap();
            hist.add(h).unwrap();
            ops += n;
        }
        let saves = saver.map_or(0, |h| h.join().unwrap());
        (hist, ops, saves)
    })
}

fn latency(o: &Opts) {
    let n = o.latency_sessions;
    println!(
        "## During a save: find latency and mixed throughput ({n} sessions, {} workload thread(s), saves back to back on one more)\n",
        o.threads
    );
    let toks = tokens(n, 99);
    let store = filled(&toks);
    let path = o.dir.join("latency.snap");
    println!("| round | run | saves | find p50 | p99 | p99.9 | max | mixed ops/s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut ratios_p999 = Vec::new();
    let mut ratios_ops = Vec::new();
    let mut spin_p999 = Vec::new();
    let mut spin_ops = Vec::new();
    for round in 1..=o.rounds {
        let row = |name: &str, beside: Beside<'_>| {
            let (h, ops, saves) = window(&store, &toks, o.threads, o.window, beside);
            let per_s = ops as f64 / o.window.as_secs_f64();
            println!(
                "| {round} | {name} | {saves} | {} ns | {} ns | {} ns | {} ns | {:.2}M |",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
                per_s / 1e6
            );
            (h.value_at_quantile(0.999) as f64, per_s)
        };
        let (p_base, ops_base) = row("no save", Beside::Nothing);
        let (p_save, ops_save) = row("saving", Beside::Saves(&path));
        let (p_spin, ops_spin) = row("spinning thread (control)", Beside::Spin);
        ratios_p999.push(p_save / p_base);
        ratios_ops.push(ops_save / ops_base);
        spin_p999.push(p_spin / p_base);
        spin_ops.push(ops_spin / ops_base);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "\nmedian of rounds: find p99.9 while saving / without = {:.2}x; mixed throughput while saving / without = {:.2}x\n",
        med(&mut ratios_p999),
        med(&mut ratios_ops)
    );
    println!(
        "control, a thread that only spins: find p99.9 {:.2}x, mixed throughput {:.2}x\n",
        med(&mut spin_p999),
        med(&mut spin_ops)
    );
    let _ = std::fs::remove_file(&path);
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&o.dir).unwrap();
    if !o.skip.iter().any(|s| s == "rates") {
        rates(&o);
    }
    if !o.skip.iter().any(|s| s == "latency") {
        latency(&o);
    }
}
