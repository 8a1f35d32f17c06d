//! Instructions per operation under callgrind: a figure that repeats to within the store's
//! random layout (its hash seed and skiplist heights), where wall-clock time on a shared
//! machine moves by tens of percent. For checking that a change leaves the hot paths alone.
//!
//! One thread, a store of 8 shards and no cleanup thread, filled with 100k sessions of the
//! contention workloads' 43-character tokens and 128-byte data; then one phase, named by the
//! first argument: `fill` (nothing more), `find` (300k hits), `overwrite` (200k commits of
//! live tokens), `touch` (200k), `fresh` (100k commits of new tokens, each deleted at once).
//! A commit's figure includes making its data's `Vec` (`data.clone()`), as a caller's would.
//! A phase's cost per operation is its run's total less the `fill` run's, over its count;
//! `instructions.sh` does the arithmetic:
//!
//! ```text
//! cd benches && bash instructions.sh
//! ```

#[allow(dead_code)]
#[path = "contention/stores.rs"]
mod stores;
#[allow(dead_code)]
#[path = "contention/workloads.rs"]
mod workloads;

use memsession::MemStore;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

const N: usize = 100_000;

fn main() {
    let phase = std::env::args().nth(1).unwrap_or_default();
    let store = MemStore::builder()
        .shards(8)
        .cleanup_interval(Duration::ZERO)
        .build();
    let expiry = SystemTime::now() + Duration::from_secs(3600);
    let data = workloads::payload();
    let tokens = workloads::tokens(N, 1);
    for t in &tokens {
        store.commit(t, data.clone(), expiry).expect("valid input");
    }
    // Drawn in every phase, so that subtracting the fill run takes their cost out of `fresh`.
    let fresh = workloads::tokens(N, 2);
    let outcome: usize = match phase.as_str() {
        "fill" => 0,
        "find" => (0..300_000)
            .map(|i| store.find(&tokens[i % N]).is_some() as usize)
            .sum(),
        "overwrite" => {
            for i in 0..200_000 {
                store
                    .commit(&tokens[i % N], data.clone(), expiry)
                    .expect("valid input");
            }
            200_000
        }
        "touch" => (0..200_000u64)
            .map(|i| {
                let later = expiry + Duration::from_secs(i % 7);
                store.touch(&tokens[i as usize % N], later) == Ok(true)
            })
            .filter(|&hit| hit)
            .count(),
        "fresh" => {
            for t in &fresh {
                store.commit(t, data.clone(), expiry).expect("valid input");
                store.delete(t);
            }
            N
        }
        other => {
            eprintln!("usage: instructions fill|find|overwrite|touch|fresh (got {other:?})");
            std::process::exit(2);
        }
    };
    black_box(outcome);
}
