//! The workloads: throughput under contention, one cleanup pass, find latency while cleanup
//! runs, and bytes per session.

use super::stores::Store;
use base64::Engine;
use rand::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Session lifetime for every commit: 30 minutes ahead, as a web server would set.
pub const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Payload size.
pub const PAYLOAD: usize = 128;
/// The number of hot tokens.
pub const HOT: usize = 16;

/// A token as scs makes one: 32 random bytes, base64url without padding (43 characters).
pub fn token(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn tokens(n: usize, seed: u64) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| token(&mut rng)).collect()
}

/// The 128-byte payload (printable, so that the tower-sessions port can store it as a string).
pub fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A fast per-thread generator for op choices (xorshift64*).
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// 95% find / 4% overwrite / 1% delete + commit of a new token.
    ReadHeavy,
    /// 50% find / 49% overwrite / 1% delete + new token.
    Mixed,
    /// 16 tokens, 90% find / 10% overwrite, every thread on the same 16.
    Hot,
    /// 50% find of long-lived sessions / 50% commit of a new session that expires 20 ms
    /// later, with a cleanup pass every 10 ms on a separate thread.
    Churn,
}

pub const WORKLOADS: [Workload; 4] = [
    Workload::ReadHeavy,
    Workload::Mixed,
    Workload::Hot,
    Workload::Churn,
];

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "read-heavy",
            Workload::Mixed => "mixed",
            Workload::Hot => "hot",
            Workload::Churn => "churn",
        }
    }
    pub fn parse(s: &str) -> Result<Workload, String> {
        WORKLOADS
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload {s:?}"))
    }
    /// (find, overwrite) per mille; the rest is delete + new token (churn: new short-lived).
    fn mix(self) -> (usize, usize) {
        match self {
            Workload::ReadHeavy => (950, 40),
            Workload::Mixed => (500, 490),
            Workload::Hot => (900, 100),
            Workload::Churn => (500, 0),
        }
    }
}

/// A store, filled with `tokens`, plus the tokens of its delete region as they stand now.
pub struct Loaded {
    pub store: Box<dyn Store>,
    /// Slots `0..region` of the token list are the delete region: a slot there is only
    /// deleted and replaced by the thread that owns it (slot % threads), which therefore
    /// always knows its current token. Other threads never read those slots, so every find
    /// targets a session that is live for the whole call: a `None` is a miss.
    region: Mutex<Vec<String>>,
}

pub fn region_len(n: usize) -> usize {
    (n / 10).max(1)
}

pub fn fill(store: &dyn Store, tokens: &[String], data: &[u8]) {
    let expiry = SystemTime::now() + LIFETIME;
    for t in tokens {
        store.commit(t, data, expiry);
    }
}

pub fn load(store: Box<dyn Store>, tokens: &[String], data: &[u8]) -> Loaded {
    fill(&*store, tokens, data);
    Loaded {
        store,
        region: Mutex::new(tokens[..region_len(tokens.len())].to_vec()),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    pub ops: u64,
    pub secs: f64,
    pub misses: u64,
    pub finds: u64,
}

impl Run {
    pub fn mops(&self) -> f64 {
        self.ops as f64 / self.secs / 1e6
    }
}

/// Runs `w` on `threads` threads for `dur`, after a barrier; returns ops and misses.
pub fn throughput(
    l: &Loaded,
    tokens: &[String],
    data: &[u8],
    w: Workload,
    threads: usize,
    dur: Duration,
    seed: u64,
) -> Run {
    let n = tokens.len();
    let region = region_len(n);
    let stable = &tokens[region..];
    assert!(stable.len() >= HOT, "too few sessions");
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let (find_pm, over_pm) = w.mix();
    let cleaner_stop = AtomicBool::new(false);
    let churn_left = AtomicUsize::new(0);
    let store = &*l.store;
    let mut reg = l.region.lock().unwrap();
    let reg_tokens: &mut Vec<String> = &mut reg;

    let run = std::thread::scope(|s| {
        // Each thread takes its own region slots and gives them back at the end.
        let mut owned: Vec<Vec<(usize, String)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, t) in reg_tokens.iter_mut().enumerate() {
            owned[i % threads].push((i, std::mem::take(t)));
        }
        let cleaner = (w == Workload::Churn).then(|| {
            s.spawn(|| {
                while !cleaner_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    if store.cleanup().is_none() {
                        return;
                    }
                }
            })
        });
        let handles: Vec<_> = owned
            .into_iter()
            .enumerate()
            .map(|(t, mut mine)| {
                let (stop, barrier, churn_left) = (&stop, &barrier, &churn_left);
                s.spawn(move || {
                    let mut xs = Xs(seed ^ ((t as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1);
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed + t as u64);
                    let (mut ops, mut misses, mut finds, mut new) = (0u64, 0u64, 0u64, 0usize);
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..32 {
                            let p = xs.below(1000);
                            // Which session: a hot one, one of mine in the region, or a
                            // stable one (never deleted, overwritten by anyone).
                            let pick = |xs: &mut Xs| -> usize {
                                if w == Workload::Hot {
                                    xs.below(HOT)
                                } else {
                                    xs.below(stable.len())
                                }
                            };
                            let use_mine = w != Workload::Hot
                                && w != Workload::Churn
                                && !mine.is_empty()
                                && xs.below(10) == 0;
                            if p < find_pm {
                                let ok = if use_mine {
                                    let k = xs.below(mine.len());
                                    store.find(&mine[k].1)
                                } else {
                                    store.find(&stable[pick(&mut xs)])
                                };
                                finds += 1;
                                misses += u64::from(!ok);
                            } else if p < find_pm + over_pm {
                                let expiry = SystemTime::now() + LIFETIME;
                                if use_mine {
                                    let k = xs.below(mine.len());
                                    store.commit(&mine[k].1, data, expiry);
                                } else {
                                    store.commit(&stable[pick(&mut xs)], data, expiry);
                                }
                            } else if w == Workload::Churn {
                                let tok = token(&mut rng);
                                store.commit(
                                    &tok,
                                    data,
                                    SystemTime::now() + Duration::from_millis(20),
                                );
                                new += 1;
                            } else if !mine.is_empty() {
                                // Delete one of mine and commit a new token in its place.
                                let k = xs.below(mine.len());
                                store.delete(&mine[k].1);
                                let tok = token(&mut rng);
                                store.commit(&tok, data, SystemTime::now() + LIFETIME);
                                mine[k].1 = tok;
                            }
                            ops += 1;
                        }
                    }
                    churn_left.fetch_add(new, Ordering::Relaxed);
                    (ops, misses, finds, mine)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let mut run = Run::default();
        for h in handles {
            let (ops, misses, finds, mine) = h.join().unwrap();
            run.ops += ops;
            run.misses += misses;
            run.finds += finds;
            for (i, t) in mine {
                reg_tokens[i] = t;
            }
        }
        run.secs = start.elapsed().as_secs_f64();
        cleaner_stop.store(true, Ordering::Relaxed);
        if let Some(c) = cleaner {
            c.join().unwrap();
        }
        run
    });
    if w == Workload::Churn {
        // Let the short-lived sessions expire and reclaim them, so the next run starts level.
        std::thread::sleep(Duration::from_millis(25));
        store.cleanup();
    }
    run
}

/// One cleanup pass over `live` live sessions plus `expired` expired ones: the live ones
/// must already be in the store. Returns (seconds, reclaimed as reported).
pub fn cleanup_pass(
    store: &dyn Store,
    data: &[u8],
    expired: usize,
    live: &[String],
    seed: u64,
) -> Option<(f64, Option<usize>)> {
    // Settle anything pending first (moka's write log), outside the timing.
    store.cleanup()?;
    let dead = tokens(expired, seed);
    // Far enough ahead that the last commit still lands before it (memstore treats a commit
    // whose expiry has passed as a delete): 30 ms plus 20 µs per session.
    let expiry =
        SystemTime::now() + Duration::from_millis(30) + Duration::from_micros(20) * expired as u32;
    for t in &dead {
        store.commit(t, data, expiry);
    }
    while SystemTime::now() <= expiry + Duration::from_millis(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Traffic between the commits and the pass, as a server's would be: one find per live
    // session, at random, so the expired sessions are cold when the pass meets them (what
    // the caches hold is what finds keep hot, not what was committed last).
    let mut xs = Xs(seed | 1);
    for _ in 0..live.len() {
        std::hint::black_box(store.find(&live[xs.below(live.len())]));
    }
    let t0 = Instant::now();
    let n = store.cleanup()?;
    Some((t0.elapsed().as_secs_f64(), n))
}

/// Find latency while a cleanup thread reclaims: one reader times every find; a second
/// thread commits `batch` sessions that expire 1 ms later, waits 2 ms, runs a cleanup pass,
/// and repeats. Returns the histogram (ns), the number of passes, and the misses.
pub fn latency_under_cleanup(
    store: &dyn Store,
    tokens: &[String],
    data: &[u8],
    readers: usize,
    batch: usize,
    dur: Duration,
) -> (hdrhistogram::Histogram<u64>, u64, u64) {
    let stop = AtomicBool::new(false);
    let passes = AtomicUsize::new(0);
    let stable = &tokens[region_len(tokens.len())..];
    std::thread::scope(|s| {
        let bg = s.spawn(|| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            while !stop.load(Ordering::Relaxed) {
                let expiry = SystemTime::now() + Duration::from_millis(1);
                for _ in 0..batch {
                    store.commit(&token(&mut rng), data, expiry);
                }
                std::thread::sleep(Duration::from_millis(2));
                if store.cleanup().is_some() {
                    passes.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let hs: Vec<_> = (0..readers)
            .map(|r| {
                let stop = &stop;
                s.spawn(move || {
                    let mut h =
                        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                            .expect("histogram");
                    let mut xs = Xs(0x1234_5678 + r as u64);
                    let mut misses = 0;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            let t = &stable[xs.below(stable.len())];
                            let t0 = Instant::now();
                            let ok = store.find(t);
                            let ns = t0.elapsed().as_nanos() as u64;
                            h.saturating_record(ns.max(1));
                            misses += u64::from(!ok);
                        }
                    }
                    (h, misses)
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .expect("histogram");
        let mut misses = 0;
        for h in hs {
            let (h, m) = h.join().unwrap();
            all.add(&h).expect("same bounds");
            misses += m;
        }
        bg.join().unwrap();
        (all, passes.load(Ordering::Relaxed) as u64, misses)
    })
}

/// New sessions into a populated store (a login burst, or bots without cookies): every op
/// commits a token never seen before, drawn by a fast generator (43 base64url characters, as
/// scs makes them). Afterwards the new sessions are deleted (outside the timing), so the next
/// cell starts from the same store.
pub fn create(store: &dyn Store, data: &[u8], threads: usize, dur: Duration, seed: u64) -> Run {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let run = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    let mut xs = Xs(seed ^ ((t as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1);
                    let mut made = Vec::new();
                    let mut raw = [0u8; 32];
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..32 {
                            for c in raw.chunks_mut(8) {
                                c.copy_from_slice(&xs.next().to_le_bytes());
                            }
                            let tok = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
                            store.commit(&tok, data, SystemTime::now() + LIFETIME);
                            made.push(tok);
                        }
                    }
                    made
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let made: Vec<Vec<String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let secs = start.elapsed().as_secs_f64();
        let ops = made.iter().map(|m| m.len() as u64).sum();
        for t in made.iter().flatten() {
            store.delete(t);
        }
        Run {
            ops,
            secs,
            misses: 0,
            finds: 0,
        }
    });
    store.cleanup(); // settles moka's pending writes
    run
}
