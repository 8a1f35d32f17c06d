//! A lock-free, in-memory session store for high-throughput web servers.
//!
//! `memstore` keeps the contract of the Go library scs's `memstore` (commit, find, delete,
//! all, a background cleanup every minute, stop) and does it without a global lock:
//! sessions live in sharded crossbeam skiplists keyed by a keyed hash of the token, with a
//! second, expiry-ordered skiplist per shard, so that cleanup evicts in O(expired) and never
//! scans live sessions, and readers never wait for writers or cleanup.
//!
//! # Usage
//! ```
//! use memstore::MemStore;
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
//! # Ok::<(), memstore::Error>(())
//! ```
//!
//! Tests control time with a [`ManualClock`]; moving it wakes the cleanup thread:
//! ```
//! use memstore::{Clock, ManualClock, MemStore};
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
//! # Ok::<(), memstore::Error>(())
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
//! Every atomic, lock, thread and epoch guard goes through one facade module; under
//! `--cfg memstore_loom` it becomes loom's, the two skiplists become linearizable stand-ins
//! (crossbeam-skiplist has no loom support: it is trusted for its own linearizability,
//! tested upstream), and `loom-tests/` model-checks the protocol this crate ships. The only
//! `unsafe` code is the version slot (`src/slot.rs`), over crossbeam-epoch.

#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(rust_2018_idioms)]

mod cleanup;
mod clock;
mod error;
mod index;
mod raw;
mod slot;
mod store;
mod sync;

pub use bytes::Bytes;
pub use clock::{Clock, ClockWaker, ManualClock, SystemClock};
pub use error::Error;
pub use store::{
    Builder, Iter, MemStore, Stats, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_DATA_LEN,
    DEFAULT_MAX_TOKEN_LEN,
};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
