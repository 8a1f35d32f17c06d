//! A lock-free, in-memory session store for high-throughput web servers.
//!
//! `memsession` keeps the contract of the Go library scs's `memstore` (commit, find, delete,
//! all, a background cleanup every minute, stop) and does it without a lock: by default
//! sessions are held in crossbeam skiplists keyed by the token (ordered by a keyed ahash of it, so timing
//! says nothing about other tokens), with a second, expiry-ordered skiplist per shard, so
//! cleanup pops only the sessions that are due and never scans live ones (its cost: see
//! Performance), and readers never wait for writers or cleanup.
//!
//! **Lock-free**: with the default token index every store operation (`find`, `commit` and
//! its conditional forms, `delete`, `iter`, cleanup passes and eviction) is lock-free:
//! crossbeam-skiplist, crossbeam-epoch and atomics, no lock anywhere on its path. Not
//! lock-free: the background thread (cleanup passes, periodic snapshots) sleeps on a mutex
//! and condition variable between them
//! (and [`MemStore::stop_cleanup`] takes them), and with the `hash-index` feature a store
//! built with [`TokenIndex::HashIndex`] takes scc's bucket locks on inserts and removals
//! (its reads stay lock-free). The design notes (`DESIGN.md`) give the protocol, its
//! invariants and what loom checks.
//!
//! # Usage
//! ```
//! use memsession::MemStore;
//! use std::time::{Duration, SystemTime};
//!
//! let store = MemStore::new(); // cleanup every minute, on its own thread
//! let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
//! store.commit("session-token", b"user=42".to_vec(), expiry)?;
//!
//! assert_eq!(store.find("session-token").as_deref(), Some(&b"user=42"[..]));
//! assert_eq!(store.find_with("session-token", |data| data.len()), Some(7));
//! assert_eq!(store.all().len(), 1);
//!
//! store.delete("session-token");
//! assert_eq!(store.find("session-token"), None);
//! # Ok::<(), memsession::Error>(())
//! ```
//!
//! Tests control time with a [`ManualClock`]; moving it wakes the store's background thread:
//! ```
//! use memsession::{Clock, ManualClock, MemStore};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
//! let store = MemStore::builder()
//!     .clock(clock.clone())
//!     .cleanup_interval(Duration::ZERO) // drive cleanup by hand
//!     .build();
//! store.commit("t", "x", clock.now() + Duration::from_secs(60))?;
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(store.find("t"), None); // expired: never returned, even before cleanup
//! assert_eq!(store.cleanup_now(), 1); // and now reclaimed
//! # Ok::<(), memsession::Error>(())
//! ```
//!
//! # Consistency
//! - Per token, operations are linearizable: the last commit wins, and a delete that has
//!   returned is not undone by a commit that started before it.
//! - [`MemStore::find`] never misses a session that is live for the whole call, even while
//!   other threads overwrite it: an overwrite swaps a pointer inside the session's node and
//!   never removes the node.
//! - A session whose expiry has passed is never returned by `find`, `all` or `iter`, whether
//!   or not cleanup has reclaimed it; cleanup only ever removes the version it examined, so a
//!   commit that extends a session just before cleanup reaches it is kept.
//! - [`MemStore::all`] and [`MemStore::iter`] are not snapshots: sessions committed or
//!   deleted during the walk may or may not appear; every session live throughout does.
//! - [`MemStore::len`] counts sessions held, including expired ones not yet reclaimed.
//!
//! # Bad input
//! An empty token, a token over [`Builder::max_token_len`] (256 bytes by default), data over
//! [`Builder::max_data_len`] (1 MiB by default) and an expiry past the year 2554 get a typed
//! [`Error`] and leave the store unchanged. An expiry at or before now deletes the session.
//! `find` and `delete` of such tokens are no-ops (no session can exist under them).
//!
//! # Correctness
//! The concurrency protocol (commit and its conditional forms, delete, find, cleanup,
//! eviction, the hint table, a snapshot load's filing, and the background thread's ticks
//! and stop) is model-checked with [loom](https://docs.rs/loom): `loom-tests/` explores
//! every interleaving of 28 small models (12 exhaustively, 16 within a preemption bound)
//! and runs in CI. What runs under loom
//! is the code this crate ships: every atomic, lock, thread and epoch guard the protocol
//! depends on goes through one facade module, which `--cfg memstore_loom` turns into loom's.
//! Nineteen seeded protocol bugs (switches that exist only in loom builds) each make their
//! model fail. `bash loom-tests/run.sh` runs it all (a few minutes on two cores).
//!
//! The design notes (`DESIGN.md` at the repository root) are the one statement of the steps
//! of each operation, the invariants they keep (I1-I5; H1-H3 for the hint table), what each
//! model checks and what is trusted rather than checked (crossbeam-skiplist's and scc's own
//! linearizability, epoch reclamation).
//!
//! The only `unsafe` code is the version slot (`src/raw/slot.rs`), over crossbeam-epoch, the
//! version's single-allocation layout (`src/raw/version.rs`: header and inline data, one
//! allocation and one cache miss less per session; Miri checks it, `.ci/miri`) and the hint
//! table's dereference of a node address (`src/raw/hints.rs`: each way owns a count of its
//! node, released only through the epoch: H1 in `DESIGN.md`).
//!
//! Beside loom: a differential proptest against a `BTreeMap` model (`tests/model.rs`, also a
//! cargo-fuzz target in `fuzz/`), per-token history checks under concurrent commit, delete,
//! cleanup and clock movement (`tests/concurrency.rs`, and the longer `tests/stress.rs` in CI),
//! a leak check under valgrind, and a flood of fresh sessions into a bounded store. Every
//! contract, differential, concurrency and bounds test runs over both token indexes.
//!
//! # Performance
//! Sessions live in 4096 token skiplists (log2(sessions / 4096) levels of `u64` compares per
//! descent), and each shard keeps a hint table over their nodes: a find, overwrite, touch or
//! delete of a known token loads one bucket (a cache line), then the node (its hash and token
//! compared, never trusted on the tag alone) and the version with the data inline in parallel
//! (the table notes where each node's version is, for a prefetch), with no descent. A token
//! whose hint is missing (evicted by another or lost in a resize) takes one descent, which
//! publishes it again. A new session costs one descent of its token skiplist
//! (insert-if-absent also finds a node that holds the token) and one insert into the expiry
//! skiplist; a delete or a reclaimed session one descent to unlink (and the one crossbeam's
//! `remove` runs to unlink the marked entry, through lines mostly loaded). The hint tables
//! cost about 16-32 bytes per session ([`Stats::hint_table_bytes`]).
//!
//! A replaced version is freed once the epoch allows, and the epoch releases in bursts: so a
//! thread that writes sessions keeps up to 2048 released versions and 512 KiB of them (inline
//! ones, up to [`FIND_COPY_LIMIT`] bytes of data each) and frees one before each version it
//! allocates, which the allocator's per-thread cache then hands back; what a thread keeps is
//! freed by its later writes or when it exits.
//!
//! A cleanup pass never scans live sessions: it pops the due entries of the expiry index, which
//! are the expired sessions plus the entries of sessions extended since their entry was filed
//! (each popped and refiled at its new deadline) plus stale ones, and per entry it unlinks or
//! refiles (a descent, O(log n)): O((expired + rescheduled + stale) x log n). Eviction in a
//! bounded store finds the soonest shard in one word per shard (O(shards) loads from a
//! compact array) and reads one expiry front per evicted session.
//!
//! `BENCHMARKS.md` has the figures against the peers (scs's `RwLock<HashMap>` design ported,
//! scc, dashmap, moka, papaya, the same two-skiplist design written naively with `SkipMap`s,
//! and the opt-in [`TokenIndex::HashIndex`] build) on the machine they were taken on;
//! `cd benches && cargo bench --bench contention -- --rounds 3` reproduces them.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
// `unsafe` lives in three modules only (the version slot, the version layout and the hint table, in `raw/`),
// each allowed there with its SAFETY arguments; the compiler keeps the rest of the crate free of it.
#![deny(unsafe_code)]
#![warn(rust_2018_idioms)]

mod clock;
#[cfg(any(feature = "tower-sessions", feature = "actix-session"))]
mod ecosystem;
mod error;
#[cfg(feature = "metrics")]
mod metrics_export;
mod raw;
#[cfg(feature = "redis")]
pub mod redis;
mod seeded_bugs;
pub mod snapshot;
mod store;
mod sync;
mod telemetry;
mod ticker;
mod token;

pub use bytes::Bytes;
pub use clock::{Clock, ClockWaker, ManualClock, SystemClock};
pub use error::Error;
pub use raw::{TokenIndex, WhenFull, FIND_COPY_LIMIT, SESSION_OVERHEAD};
#[cfg(memstore_loom)]
#[doc(hidden)]
pub use seeded_bugs::loom_bugs;
pub use snapshot::{LoadReport, SaveReport, SnapshotError, SnapshotErrorKind, SnapshotStatus};
pub use store::{
    Builder, Cursor, Iter, MemStore, Stats, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_DATA_LEN,
    DEFAULT_MAX_TOKEN_LEN, DEFAULT_NAME,
};
pub use token::{generate_token, TOKEN_LEN};

#[cfg(feature = "actix-session")]
pub use ecosystem::actix as actix_session;
#[cfg(feature = "tower-sessions")]
pub use ecosystem::tower as tower_sessions;

// The README's framework sections need both ecosystem features (CI's `--all-features`).
// The README's examples use every optional feature (the near-cache's needs `redis`).
#[cfg(all(
    doctest,
    feature = "tower-sessions",
    feature = "actix-session",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
