//! The near-cache against plain Redis reads, same run, same client (redis-rs, one RESP3
//! multiplexed connection each), against a `redis-server` this bench starts on a free loopback
//! port. Prints a markdown table (BENCHMARKS.md, "Near-cache").
//!
//! ```sh
//! cd benches && cargo bench --bench redis   # needs redis-server on the PATH
//! ```
//!
//! Rows: `find` served by the local tier; `find` that misses locally (`MULTI GET PEXPIRETIME
//! EXEC`, then a fill); a plain `GET` through the same client. Latency is one task issuing one
//! request at a time; throughput is `TASKS` tasks on a 2-worker runtime for `SECS` seconds (the
//! Redis row keeps up to `IN_FLIGHT` requests pipelined on its connection, which flatters it).

#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use memsession::redis::NearCache;
use redis_support::{redis_server_or_skip, RedisServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const SESSIONS: usize = 1_000;
/// About a tower-sessions record with three entries, MessagePack-encoded.
const DATA_LEN: usize = 107;
const SECS: f64 = 1.0;
const TASKS: usize = 2;
const IN_FLIGHT: usize = 64;

fn token(i: usize) -> String {
    format!("session-{i:08}")
}

struct Row {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    ops_per_sec: f64,
    concurrency: usize,
}

fn summarise(mut ns: Vec<u64>) -> (Duration, Duration, Duration) {
    ns.sort_unstable();
    let at = |q: f64| Duration::from_nanos(ns[((ns.len() - 1) as f64 * q) as usize]);
    let mean = Duration::from_nanos(ns.iter().sum::<u64>() / ns.len() as u64);
    (at(0.50), at(0.99), mean)
}

/// Sequential latency of `op` over `n` calls, one token after another.
async fn latency<F, Fut>(n: usize, mut op: F) -> (Duration, Duration, Duration)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ns = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i % SESSIONS).await;
        ns.push(start.elapsed().as_nanos() as u64);
    }
    summarise(ns)
}

/// Operations per second of `tasks` tasks running `op` in a loop for [`SECS`].
async fn throughput<F, Fut>(tasks: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(SECS);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = t * 7919;
                let mut n = 0u64;
                while Instant::now() < end {
                    for _ in 0..64 {
                        op(i % SESSIONS).await;
                        i += 1;
                    }
                    n += 64;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// One table row: `op`'s latency over `samples` sequential calls, then its throughput with
/// `concurrency` tasks.
async fn row<F, Fut>(name: &'static str, samples: usize, concurrency: usize, op: F) -> Row
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (p50, p99, mean) = latency(samples, op.clone()).await;
    let ops_per_sec = throughput(concurrency, op).await;
    Row {
        name,
        p50,
        p99,
        mean,
        ops_per_sec,
        concurrency,
    }
}

fn fmt_d(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else {
        format!("{:.1} µs", ns as f64 / 1000.0)
    }
}

fn main() {
    let Some(bin) = redis_server_or_skip("benches/redis.rs") else {
        return;
    };
    let server = RedisServer::start(bin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rows = rt.block_on(async {
        let near = NearCache::connect(server.url()).await.expect("connect");
        let expiry = SystemTime::now() + Duration::from_secs(3600);
        let data = vec![b'x'; DATA_LEN];
        for i in 0..SESSIONS {
            near.commit(&token(i), data.clone(), expiry)
                .await
                .expect("commit");
        }
        // The same client crate and protocol, a plain connection: GET only.
        let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
        let plain = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let key = |i: usize| format!("memstore:{}", token(i));

        let n = near.clone();
        let hit = move |i| {
            let n = n.clone();
            async move {
                assert!(n.find(&token(i)).await.unwrap().is_some());
            }
        };
        let n = near.clone();
        let miss = move |i| {
            let n = n.clone();
            async move {
                n.local().delete(&token(i)); // force a miss: read Redis, fill
                assert!(n.find(&token(i)).await.unwrap().is_some());
            }
        };
        let c = plain.clone();
        let get = move |i| {
            let (mut c, k) = (c.clone(), key(i));
            async move {
                let v: Option<Vec<u8>> =
                    redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
                assert!(v.is_some());
            }
        };
        let rows = vec![
            row("near-cache `find`, local hit", 200_000, TASKS, hit).await,
            row(
                "near-cache `find`, local miss (Redis read + fill)",
                20_000,
                IN_FLIGHT,
                miss,
            )
            .await,
            row("plain Redis `GET`, same client", 20_000, IN_FLIGHT, get).await,
        ];
        let stats = near.stats();
        eprintln!("near-cache stats: {stats:?}");
        rows
    });

    println!(
        "\n{SESSIONS} sessions of {DATA_LEN} bytes; redis-server on loopback; 2-worker tokio runtime\n"
    );
    println!("| read | p50 | p99 | mean | throughput (tasks) |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} ops/s ({}) |",
            r.name,
            fmt_d(r.p50),
            fmt_d(r.p99),
            fmt_d(r.mean),
            r.ops_per_sec,
            r.concurrency
        );
    }
    let (hit, get) = (&rows[0], &rows[2]);
    println!(
        "\nlocal hit vs plain GET: {:.0}x lower p50 latency, {:.1}x the throughput",
        get.p50.as_secs_f64() / hit.p50.as_secs_f64(),
        hit.ops_per_sec / get.ops_per_sec
    );
}
