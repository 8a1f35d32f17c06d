//! The contention harness: memstore against the stores a user would pick instead, in one
//! run. See BENCHMARKS.md for the results and `--help` for the options.
//!
//! ```text
//! cd benches
//! cargo bench --bench contention -- --rounds 3 --out results  # the full run (BENCHMARKS.md)
//! cargo bench --bench contention -- --quick      # a harness check (CI runs it)
//! cargo bench --bench contention -- --threads 1,2,4,8,16 --stores memstore,scc,papaya
//! cargo bench --bench contention --features mimalloc   # every store on mimalloc
//! ```

#[path = "contention/report.rs"]
mod report;
#[path = "contention/stores.rs"]
mod stores;
#[path = "contention/workloads.rs"]
mod workloads;

use memsession_benches::ALLOCATOR;
use report::{fmt_n, median, Results};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stores::Kind;
use workloads::Workload;

/// With `--features mimalloc`, every store in the run allocates through mimalloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "\
contention: memstore against its peers under contention

USAGE: cargo bench --bench contention -- [OPTIONS]

OPTIONS:
  --quick                  a harness check: 100k sessions, short runs, one round
  --threads LIST           thread counts (default 1,2)
  --sessions LIST          session counts for the throughput workloads (default 100000,1000000)
  --workloads LIST         read-heavy,mixed,hot,churn (default all)
  --stores LIST            memstore,memstore-hash,naive,scs,dashmap,moka,scc,papaya,tower;
                           memstore@N for N shards
  --rounds N               rounds; stores are interleaved within each round (default 5)
  --duration-ms N          length of one throughput run (default 300)
  --cleanup-sizes LIST     live sessions for the cleanup pass (default 100000,1000000,10000000)
  --latency-sessions N     live sessions for the latency run (default 1000000)
  --rss-sessions N         sessions for bytes per session (default 1000000)
  --skip LIST              parts to skip: throughput,create,cleanup,latency,rss
  --out DIR                where contention.md and contention.svg go (default
                           target/contention, or target/contention-quick with --quick;
                           BENCHMARKS.md's tables: --out results)
  -h, --help               this text
";

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    threads: Vec<usize>,
    sessions: Vec<usize>,
    workloads: Vec<Workload>,
    stores: Vec<Kind>,
    rounds: usize,
    duration: Duration,
    cleanup_sizes: Vec<usize>,
    latency_sessions: usize,
    rss_sessions: usize,
    skip: Vec<String>,
    out: Option<PathBuf>,
}

fn list<T>(v: std::ffi::OsString, f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let s = v.into_string().map_err(|_| "not UTF-8".to_string())?;
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| f(x.trim()))
        .collect()
}

fn num(s: &str) -> Result<usize, String> {
    let s = s.replace('_', "");
    let (d, m) = match s.as_bytes().last() {
        Some(b'k') => (&s[..s.len() - 1], 1000),
        Some(b'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (&s[..], 1),
    };
    d.parse::<usize>()
        .map(|x| x * m)
        .map_err(|e| format!("{s}: {e}"))
}

enum Cmd {
    Run(Opts),
    /// The child of the bytes-per-session measurement: `rss STORE N`.
    Rss(Kind, usize),
}

fn parse() -> Result<Cmd, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut o = Opts {
        quick: false,
        threads: vec![1, 2],
        sessions: vec![100_000, 1_000_000],
        workloads: workloads::WORKLOADS.to_vec(),
        stores: stores::ALL
            .iter()
            .map(|s| Kind::parse(s).unwrap())
            .collect(),
        rounds: 5,
        duration: Duration::from_millis(300),
        cleanup_sizes: vec![100_000, 1_000_000, 10_000_000],
        latency_sessions: 1_000_000,
        rss_sessions: 1_000_000,
        skip: vec![],
        out: None,
    };
    let mut set = Vec::new();
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            // `cargo bench` passes `--bench` to every bench target.
            Long("bench") => {}
            Long("quick") => o.quick = true,
            Long("threads") => o.threads = list(p.value().map_err(e)?, num)?,
            Long("sessions") => {
                o.sessions = list(p.value().map_err(e)?, num)?;
                set.push("sessions");
            }
            Long("workloads") => o.workloads = list(p.value().map_err(e)?, Workload::parse)?,
            Long("stores") => o.stores = list(p.value().map_err(e)?, Kind::parse)?,
            Long("rounds") => {
                o.rounds = num(&p.value().map_err(e)?.string().map_err(e)?)?.max(1);
                set.push("rounds");
            }
            Long("duration-ms") => {
                o.duration =
                    Duration::from_millis(num(&p.value().map_err(e)?.string().map_err(e)?)? as u64);
                set.push("duration");
            }
            Long("cleanup-sizes") => {
                o.cleanup_sizes = list(p.value().map_err(e)?, num)?;
                set.push("cleanup");
            }
            Long("latency-sessions") => {
                o.latency_sessions = num(&p.value().map_err(e)?.string().map_err(e)?)?;
                set.push("latency");
            }
            Long("rss-sessions") => {
                o.rss_sessions = num(&p.value().map_err(e)?.string().map_err(e)?)?;
                set.push("rss");
            }
            Long("skip") => o.skip = list(p.value().map_err(e)?, |s| Ok(s.to_string()))?,
            Long("out") => o.out = Some(p.value().map_err(e)?.into()),
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            Value(v) if v == "rss" => {
                let store = Kind::parse(&p.value().map_err(e)?.string().map_err(e)?)?;
                let n = num(&p.value().map_err(e)?.string().map_err(e)?)?;
                return Ok(Cmd::Rss(store, n));
            }
            // Filters that `cargo bench NAME` passes on: ignore them.
            Value(_) => {}
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if o.quick {
        let d = |k: &str| !set.contains(&k);
        if d("sessions") {
            o.sessions = vec![100_000];
        }
        if d("rounds") {
            o.rounds = 1;
        }
        if d("duration") {
            o.duration = Duration::from_millis(60);
        }
        if d("cleanup") {
            o.cleanup_sizes = vec![100_000];
        }
        if d("latency") {
            o.latency_sessions = 100_000;
        }
        if d("rss") {
            o.rss_sessions = 100_000;
        }
    }
    Ok(Cmd::Run(o))
}

fn main() {
    let cmd = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("contention: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    match cmd {
        Cmd::Rss(kind, n) => rss_child(kind, n),
        Cmd::Run(o) => run(o),
    }
}

/// In a fresh process: RSS growth per session after committing `n` sessions.
fn rss_child(kind: Kind, n: usize) {
    let tokens = workloads::tokens(n, 42);
    let data = workloads::payload();
    let store = kind.build();
    let before = memsession_benches::rss();
    workloads::fill(&*store, &tokens, &data);
    store.cleanup(); // settles moka's pending writes
    let after = memsession_benches::rss();
    println!("{}", after.saturating_sub(before) as f64 / n as f64);
    drop(store);
}

fn mem_available() -> usize {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn run(o: Opts) {
    let t_all = Instant::now();
    let names: Vec<String> = o.stores.iter().map(|k| k.name()).collect();
    let scs = o.stores.iter().position(|k| *k == Kind::Scs);
    let ms = o.stores.iter().position(|k| matches!(k, Kind::MemStore(_)));
    let data = workloads::payload();
    let skip = |p: &str| o.skip.iter().any(|s| s == p);
    let wnames: Vec<&'static str> = o.workloads.iter().map(|w| w.name()).collect();
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        md,
        "Run: {} cores, threads {:?}, {} round(s) of {} ms per cell{}, {}; stores: {}.",
        cores,
        o.threads,
        o.rounds,
        o.duration.as_millis(),
        if o.quick { " (--quick)" } else { "" },
        ALLOCATOR,
        o.stores
            .iter()
            .map(|k| k.short())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---------------------------------------------------------- throughput
    if !skip("throughput") {
        let mut res: Results = Default::default();
        let mut notes = Vec::new();
        for &n in &o.sessions {
            let tokens = workloads::tokens(n, n as u64);
            let t0 = Instant::now();
            let loaded: Vec<_> = o
                .stores
                .iter()
                .map(|k| workloads::load(k.build(), &tokens, &data))
                .collect();
            eprintln!(
                "[{:>6.1}s] filled {} stores with {} sessions in {:.1}s",
                t_all.elapsed().as_secs_f64(),
                loaded.len(),
                fmt_n(n),
                t0.elapsed().as_secs_f64()
            );
            for round in 0..o.rounds {
                for (wi, &w) in o.workloads.iter().enumerate() {
                    for &t in &o.threads {
                        // Interleave: every store once per (round, workload, threads), in an
                        // order rotated by round.
                        for j in 0..loaded.len() {
                            let si = (j + round) % loaded.len();
                            let seed = (round * 1000 + wi * 100 + t) as u64;
                            let r = workloads::throughput(
                                &loaded[si],
                                &tokens,
                                &data,
                                w,
                                t,
                                o.duration,
                                seed,
                            );
                            let c = res.entry((n, w.name(), t, si)).or_default();
                            c.mops.push(r.mops());
                            c.misses += r.misses;
                            c.finds += r.finds;
                            if w == Workload::Hot
                                && round + 1 == o.rounds
                                && t == *o.threads.last().unwrap()
                            {
                                if let Some(note) = loaded[si].store.note() {
                                    notes.push(format!(
                                        "after hot, {} sessions, {t} threads: {}: {note}",
                                        fmt_n(n),
                                        names[si]
                                    ));
                                }
                            }
                        }
                    }
                }
                eprintln!(
                    "[{:>6.1}s] {} sessions: round {} done",
                    t_all.elapsed().as_secs_f64(),
                    fmt_n(n),
                    round + 1
                );
            }
        }
        let _ = writeln!(md, "\n### Throughput (median Mops/s over rounds; ratio to the scs port; missed reads of live sessions over all rounds)");
        report::throughput_tables(
            &mut md,
            &res,
            &names,
            scs,
            ms,
            &o.sessions,
            &wnames,
            &o.threads,
        );
        if !notes.is_empty() {
            let _ = writeln!(md, "\nmemstore's expiry index (DESIGN.md I5):\n");
            for n in &notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        let out = out_dir(&o);
        let svg = out.join("contention.svg");
        match report::plot(&svg, &res, &names, &o.sessions, &wnames, &o.threads) {
            Ok(()) => eprintln!("wrote {}", svg.display()),
            Err(e) => eprintln!("plot failed: {e}"),
        }
    }

    // ---------------------------------------------------------- create
    if !skip("create") {
        // New sessions into a populated store: every store, plus memstore and moka bounded at
        // the session count (each new session evicts one).
        let mut kinds: Vec<(String, Kind, bool)> = Vec::new();
        for &k in &o.stores {
            if k == Kind::Tower {
                continue; // no cleanup and no bound: not a store a burst should meet
            }
            kinds.push((k.short(), k, false));
            if matches!(k, Kind::MemStore(None) | Kind::Moka) {
                kinds.push((format!("{}, capped", k.short()), k, true));
            }
        }
        let _ = writeln!(
            md,
            "\n### Create: new sessions into a populated store (median Mops/s over rounds; ratio to the scs port)\n"
        );
        for &n in &o.sessions {
            let tokens = workloads::tokens(n, n as u64);
            let stores: Vec<_> = kinds
                .iter()
                .map(|(_, k, capped)| {
                    let s = if *capped {
                        k.build_capped(n).expect("a capped kind")
                    } else {
                        k.build()
                    };
                    workloads::fill(&*s, &tokens, &data);
                    s
                })
                .collect();
            let mut cells: Vec<Vec<Vec<f64>>> =
                vec![vec![Vec::new(); o.threads.len()]; kinds.len()];
            for round in 0..o.rounds {
                for (ti, &t) in o.threads.iter().enumerate() {
                    for j in 0..stores.len() {
                        let si = (j + round) % stores.len();
                        let r =
                            workloads::create(&*stores[si], &data, t, o.duration, round as u64 + 1);
                        cells[si][ti].push(r.mops());
                    }
                }
            }
            eprintln!(
                "[{:>6.1}s] create at {} sessions done",
                t_all.elapsed().as_secs_f64(),
                fmt_n(n)
            );
            let _ = writeln!(md, "#### create, {} sessions\n", fmt_n(n));
            let mut head = String::from("| store |");
            let mut rule = String::from("|---|");
            for t in &o.threads {
                let _ = write!(head, " {t} thr Mops/s | vs scs | vs naive |");
                rule.push_str("---:|---:|---:|");
            }
            let _ = writeln!(md, "{head}\n{rule}");
            let at = |name: &str, ti: usize| {
                kinds
                    .iter()
                    .position(|(s, _, _)| s == name)
                    .map(|i| median(cells[i][ti].clone()))
            };
            for ((name, _, _), by_threads) in kinds.iter().zip(&cells) {
                let mut row = format!("| {name} |");
                for (ti, rates) in by_threads.iter().enumerate() {
                    let m = median(rates.clone());
                    let ratio = |peer: &str| {
                        at(peer, ti).map_or("-".to_string(), |p| format!("{:.2}x", m / p))
                    };
                    let _ = write!(row, " {m:.2} | {} | {} |", ratio("scs"), ratio("naive"));
                }
                let _ = writeln!(md, "{row}");
            }
            if let (Some(_), Some(_)) = (at("memstore", 0), at("memstore, capped", 0)) {
                let r: Vec<String> = (0..o.threads.len())
                    .map(|ti| {
                        format!(
                            "{:.2}x at {} thr",
                            at("memstore, capped", ti).unwrap() / at("memstore", ti).unwrap(),
                            o.threads[ti]
                        )
                    })
                    .collect();
                let _ = writeln!(md, "\nmemstore capped / unbounded: {}.\n", r.join(", "));
            }
        }
    }

    // ---------------------------------------------------------- cleanup pass
    if !skip("cleanup") {
        let _ = writeln!(
            md,
            "\n### One cleanup pass over cold sessions (median over {} pass(es); µs, and ns per reclaimed session; one random find per live session runs between the expired sessions' commits and the pass)\n",
            o.rounds
        );
        let _ = writeln!(md, "| store | live | expired | pass µs | ns / expired | reclaimed |\n|---|---:|---:|---:|---:|---:|");
        for &n in &o.cleanup_sizes {
            let need = n * 700;
            if mem_available() < need * 2 {
                let _ = writeln!(
                    md,
                    "| (all) | {} | - | skipped: {} GiB available, need about {} | | |",
                    fmt_n(n),
                    mem_available() >> 30,
                    need >> 30
                );
                continue;
            }
            let tokens = workloads::tokens(n, 99);
            for (si, k) in o.stores.iter().enumerate() {
                let store = k.build();
                if store.cleanup().is_none() {
                    let _ = writeln!(md, "| {} | {} | - | no cleanup | | |", names[si], fmt_n(n));
                    continue;
                }
                let t0 = Instant::now();
                workloads::fill(&*store, &tokens, &data);
                eprintln!(
                    "[{:>6.1}s] cleanup: {} filled with {} in {:.1}s",
                    t_all.elapsed().as_secs_f64(),
                    names[si],
                    fmt_n(n),
                    t0.elapsed().as_secs_f64()
                );
                let mut es = vec![1000, n / 1000, n / 100];
                es.sort_unstable();
                es.dedup();
                for e in es.into_iter().filter(|&e| e > 0) {
                    let mut secs = Vec::new();
                    let mut got = None;
                    for r in 0..o.rounds {
                        if let Some((s, c)) =
                            workloads::cleanup_pass(&*store, &data, e, &tokens, (r * 7 + e) as u64)
                        {
                            secs.push(s);
                            got = c;
                        }
                    }
                    let m = median(secs);
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {:.0} | {:.0} | {} |",
                        names[si],
                        fmt_n(n),
                        fmt_n(e),
                        m * 1e6,
                        m * 1e9 / e as f64,
                        got.map_or("not reported".into(), |c| c.to_string())
                    );
                }
                drop(store);
            }
        }
    }

    // ---------------------------------------------------------- latency
    if !skip("latency") {
        let n = o.latency_sessions;
        let readers = o
            .threads
            .iter()
            .max()
            .copied()
            .unwrap_or(2)
            .saturating_sub(1)
            .max(1);
        let dur = if o.quick {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        };
        let batch = 1000;
        let _ = writeln!(md, "\n### find latency while cleanup runs ({} live; {readers} reader thread(s); a second thread commits {batch} sessions that expire 1 ms later, waits 2 ms, runs a cleanup pass, repeats; {} ms per store)\n", fmt_n(n), dur.as_millis());
        let _ = writeln!(md, "| store | p50 ns | p99 ns | p99.9 ns | p99.99 ns | max µs | cleanup passes | missed |\n|---|---:|---:|---:|---:|---:|---:|---:|");
        let tokens = workloads::tokens(n, 5);
        for (si, k) in o.stores.iter().enumerate() {
            let store = k.build();
            workloads::fill(&*store, &tokens, &data);
            store.cleanup();
            let (h, passes, missed) =
                workloads::latency_under_cleanup(&*store, &tokens, &data, readers, batch, dur);
            let q = |x: f64| h.value_at_quantile(x);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                names[si],
                q(0.5),
                q(0.99),
                q(0.999),
                q(0.9999),
                h.max() as f64 / 1000.0,
                if store.cleanup().is_some() {
                    passes.to_string()
                } else {
                    "no cleanup".into()
                },
                missed
            );
            eprintln!(
                "[{:>6.1}s] latency: {} done",
                t_all.elapsed().as_secs_f64(),
                names[si]
            );
        }
    }

    // ---------------------------------------------------------- bytes per session
    if !skip("rss") {
        let n = o.rss_sessions;
        let _ = writeln!(md, "\n### Bytes per session (RSS growth over {} sessions of 43-byte token + 128-byte payload, a fresh process per store)\n", fmt_n(n));
        let _ = writeln!(md, "| store | bytes / session | vs scs |\n|---|---:|---:|");
        let exe = std::env::current_exe().expect("own path");
        let mut vals = Vec::new();
        for k in &o.stores {
            let spec = match k {
                Kind::MemStore(Some(s)) => format!("memstore@{s}"),
                k => k.short(),
            };
            let out = std::process::Command::new(&exe)
                .args(["rss", &spec, &n.to_string()])
                .output();
            let v = out
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok());
            vals.push(v);
        }
        let base = scs.and_then(|i| vals[i]);
        for (si, v) in vals.iter().enumerate() {
            let r = match (v, base) {
                (Some(v), Some(b)) if b > 0.0 => format!("{:.2}x", v / b),
                _ => "n/a".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {r} |",
                names[si],
                v.map_or("failed".into(), |v| format!("{v:.0}"))
            );
        }
    }

    let _ = writeln!(
        md,
        "\nTotal run time: {:.0} s.",
        t_all.elapsed().as_secs_f64()
    );
    println!("{md}");
    let out = out_dir(&o);
    let path = out.join("contention.md");
    match std::fs::write(&path, &md) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn out_dir(o: &Opts) -> PathBuf {
    // The tracked tables (benches/results) are written only when `--out` names them.
    let dir = o.out.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            )
            .join(if o.quick {
                "contention-quick"
            } else {
                "contention"
            })
    });
    let _ = std::fs::create_dir_all(&dir);
    dir
}
