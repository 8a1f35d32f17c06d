//! Single-threaded micro-benchmarks of find, commit and delete, for regression tracking:
//! memstore against the scs port (`RwLock<HashMap>`), 100k sessions, 43-character tokens,
//! 128-byte payloads.
//!
//! ```text
//! cd benches && cargo bench --bench micro
//! ```

#[allow(dead_code)]
#[path = "contention/stores.rs"]
mod stores;
#[allow(dead_code)]
#[path = "contention/workloads.rs"]
mod workloads;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};
use stores::{Kind, Store};

const N: usize = 100_000;

fn bench(c: &mut Criterion) {
    let tokens = workloads::tokens(N, 1);
    let data = workloads::payload();
    for kind in [Kind::MemStore(None), Kind::Scs] {
        let store: Box<dyn Store> = kind.build();
        workloads::fill(&*store, &tokens, &data);
        let name = kind.short();
        let mut g = c.benchmark_group(name.as_str());

        let mut i = 0usize;
        g.bench_function("find (hit)", |b| {
            b.iter(|| {
                i = (i + 7919) % N;
                black_box(store.find(&tokens[i]))
            })
        });
        g.bench_function("find (miss)", |b| {
            b.iter(|| black_box(store.find("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")))
        });
        let expiry = SystemTime::now() + workloads::LIFETIME;
        g.bench_function("commit (overwrite)", |b| {
            b.iter(|| {
                i = (i + 7919) % N;
                store.commit(&tokens[i], &data, expiry)
            })
        });
        // A fresh insert, then its delete (keeps the store at N).
        let mut seed = 1000;
        g.bench_function("commit (fresh) + delete", |b| {
            b.iter_batched(
                || {
                    seed += 1;
                    workloads::tokens(1, seed).pop().unwrap()
                },
                |t| {
                    store.commit(&t, &data, expiry);
                    store.delete(&t);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("delete", |b| {
            b.iter_custom(|iters| {
                seed += 1;
                let fresh = workloads::tokens(iters as usize, seed);
                for t in &fresh {
                    store.commit(t, &data, expiry);
                }
                let t0 = Instant::now();
                for t in &fresh {
                    store.delete(t);
                }
                t0.elapsed()
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
