//! Stress (ignored by default; `.ci/run` runs it with `--ignored`): 2x cores threads for a
//! bounded time (`MEMSTORE_STRESS_SECS`, default 30) with per-token increasing versions:
//! zero anomalies (a reader never sees a token's version go backwards, data never torn),
//! zero missed reads of live sessions, `len` consistent and invariants intact at quiescence.

mod common;

use common::histories::{self, Config};
use std::time::{Duration, Instant};

#[test]
#[ignore = "stress: run with --ignored (CI does)"]
fn stress_histories() {
    let secs: u64 = std::env::var("MEMSTORE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    // 2x cores threads in all: writers and readers, plus the cleaner and the clock ticker.
    let threads = (2 * cores).max(4);
    let writers = (threads - 2) / 2 + 1;
    let readers = (threads - 2 - writers).max(1);
    let per_config = Duration::from_secs(secs) / 2;
    for shards in [1, 64] {
        let report = histories::run(&Config {
            shards,
            writers,
            readers,
            rounds: u64::MAX,
            until: Some(Instant::now() + per_config),
        });
        println!("stress: {shards} shard(s), {writers} writers, {readers} readers: {report:?}");
        assert_eq!(report.misses, 0, "missed reads: {report:?}");
        assert!(report.reads > 0 && report.writes > 0);
    }
}
