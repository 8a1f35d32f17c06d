//! memsession as a coherent near-cache in front of Redis (feature `redis`).
//!
//! When one server is not enough, sessions must live in a shared engine; [`NearCache`] keeps
//! the truth in Redis and serves reads from a local [`MemStore`]. Every instance of an app
//! holds its own `NearCache` over the same Redis.
//!
//! - **Writes** go to Redis first, with the session's absolute expiry (`SET key value PXAT ms`),
//!   then to the local store with the same deadline. `delete` is `DEL`, then a local delete.
//! - **Reads** are served from the local store; a local miss reads Redis (`GET` and
//!   `PEXPIRETIME` in one `MULTI`) and fills the local store with Redis's deadline.
//! - **Coherence** is Redis's server-assisted client-side caching: the connection is RESP3 and
//!   runs `CLIENT TRACKING ON BCAST PREFIX <prefix> NOLOOP`, so Redis pushes an invalidation
//!   for every key under the prefix that *another* connection writes (or expires, or evicts),
//!   and the local entry is dropped. The invalidation is applied inside the connection's reader,
//!   before any later reply on that connection is handed out.
//! - **Lost connection**: the local store is emptied at once (invalidations may have been
//!   missed: a fresh, empty tier is swapped in, in O(1)), counted in
//!   [`NearCacheStats::connection_losses`], and a background task reconnects with backoff.
//!   Until it has, operations fail with [`NearCacheError::Disconnected`]; nothing stale is
//!   served.
//! - **Failover**: only a primary is used (`ROLE`). A `READONLY` or `MASTERDOWN` reply, or a
//!   heartbeat that finds the server demoted, counts as a lost connection, and the task
//!   reconnects to the current primary: among the nodes given to
//!   [`NearCacheBuilder::connect_nodes`], or the one Sentinel names
//!   ([`NearCacheBuilder::connect_sentinel`]).
//!
//! # Guarantees
//! - **Read-your-writes** on one instance: after `commit` returns, that instance's `find`
//!   returns the new data (its own write is not echoed back to it: `NOLOOP`), and after
//!   `delete` returns, `None`, even while a read of the old value is in flight.
//! - **Bounded staleness** across instances: a `find` on any instance at time *T* never
//!   returns data that a write acknowledged before *T* − [`max_staleness`] replaced or
//!   deleted. A background heartbeat asks Redis (`ROLE`) every `max_staleness / 4`; because
//!   Redis sends an invalidation before the write's reply, and a later reply after it, a reply
//!   for a heartbeat sent at *t* proves that every write acknowledged before *t* has been
//!   applied locally. The local store serves reads only while the last such proof is younger
//!   than `max_staleness`; otherwise reads go to Redis. A slow heartbeat only lets that lease
//!   lapse; it does not drop the connection. On a healthy connection the real window is the
//!   invalidation's delivery time (well under a millisecond on loopback).
//! - **No stale read after a reconnect or a failover**: the local store is emptied when the
//!   connection is lost and again when tracking is re-established, so a session written or
//!   deleted while an instance was cut off, or lost with a restarted Redis, is read from Redis.
//! - **Races inside one instance** (a fill from Redis racing a write or an invalidation of the
//!   same token) never leave an older value in the local store, not even for an instant: an
//!   operation stores its value locally only if nothing else touched the token's bucket during
//!   its round trip, checked and stored in one step under the bucket's lock (a spurious miss
//!   at worst). Reads take no lock.
//! - **Expiry** is honoured by both tiers: Redis expires the key at the deadline
//!   (milliseconds, by Redis's clock), and the local store never returns a session past its
//!   deadline (by the near-cache's [`Clock`](crate::Clock)); a session Redis still holds but
//!   whose deadline has passed by that clock reads as `None`. Keep the clocks of app servers
//!   and Redis in sync.
//!
//! Deadlines are truncated to whole milliseconds (Redis's resolution) in both tiers, so every
//! instance agrees on them. Bad input (empty or oversized token, oversized data, an expiry past
//! the year 2554) is judged by the local [`MemStore`]'s own checks, before anything is sent.
//!
//! [`max_staleness`]: NearCacheBuilder::max_staleness
//! [`MemStore`]: crate::MemStore
//!
//! ```no_run
//! use memsession::redis::NearCache;
//! use std::time::{Duration, SystemTime};
//!
//! # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
//! let a = NearCache::connect("redis://127.0.0.1:6379").await?;
//! let b = NearCache::connect("redis://127.0.0.1:6379").await?; // another app server
//!
//! let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
//! a.commit("token", b"user=42".to_vec(), expiry).await?;
//! assert_eq!(b.find("token").await?.as_deref(), Some(&b"user=42"[..])); // now cached in b
//! a.delete("token").await?; // b's copy is invalidated
//! # Ok(())
//! # }
//! ```

mod builder;
mod cache;
mod coherence;
mod conn;
mod error;
mod primary;
mod shared;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks;
#[cfg(feature = "tower-sessions")]
mod tower;

pub use ::redis::RedisError;
pub use builder::{
    NearCacheBuilder, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_STALENESS, DEFAULT_PREFIX,
    DEFAULT_RESPONSE_TIMEOUT,
};
pub use cache::NearCache;
pub use error::{NearCacheError, NearCacheStats};
