//! What the near-cache reports: its error type and its counters.

use ::redis::RedisError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};

/// Why a [`NearCache`](super::NearCache) operation failed.
///
/// ```
/// use memsession::redis::NearCacheError;
/// let e = NearCacheError::from(memsession::Error::EmptyToken);
/// assert_eq!(e.to_string(), "session token is empty");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NearCacheError {
    /// Bad input (empty or oversized token, oversized data, expiry out of range), as the
    /// local [`MemStore`](crate::MemStore) judges it; nothing was written.
    Invalid(crate::Error),
    /// Redis answered with an error, or the round trip failed. After a failed write the
    /// token's local entry is dropped, so the next read asks Redis. `READONLY` and
    /// `MASTERDOWN` (the server was demoted) also drop the connection, and the background task
    /// reconnects to the current primary.
    Redis(RedisError),
    /// The connection to Redis is down; a background task is reconnecting.
    Disconnected,
}

impl fmt::Display for NearCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NearCacheError::Invalid(e) => fmt::Display::fmt(e, f),
            NearCacheError::Redis(e) => write!(f, "redis: {e}"),
            NearCacheError::Disconnected => f.write_str("not connected to redis (reconnecting)"),
        }
    }
}

impl std::error::Error for NearCacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NearCacheError::Invalid(e) => Some(e),
            NearCacheError::Redis(e) => Some(e),
            NearCacheError::Disconnected => None,
        }
    }
}

impl From<crate::Error> for NearCacheError {
    fn from(e: crate::Error) -> Self {
        NearCacheError::Invalid(e)
    }
}

impl From<RedisError> for NearCacheError {
    fn from(e: RedisError) -> Self {
        NearCacheError::Redis(e)
    }
}

/// Counters of a [`NearCache`](super::NearCache), from
/// [`NearCache::stats`](super::NearCache::stats).
///
/// ```
/// let stats = memsession::redis::NearCacheStats::default();
/// assert_eq!(stats.local_hits, 0);
/// assert!(!stats.connected);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Reads served by the local store.
    pub local_hits: u64,
    /// Reads that went to Redis (a local miss, or no fresh heartbeat).
    pub redis_reads: u64,
    /// Tokens dropped from the local store on an invalidation pushed by Redis.
    pub invalidations: u64,
    /// Local entries dropped because a concurrent operation on the same bucket raced them.
    pub conflicts: u64,
    /// Times the whole local store was dropped (lost connection, reconnect, `FLUSHALL`).
    pub flushes: u64,
    /// Connections to Redis lost (closed, failed, timed out, or the server was demoted).
    pub connection_losses: u64,
    /// Connections (re-)established after a loss.
    pub reconnects: u64,
    /// Whether a connection to a primary is up now.
    pub connected: bool,
}

/// The live counters. A counter is bumped after what it counts (a flush, a lost connection) is
/// done: `Release` there and `Acquire` in [`snapshot`](Self::snapshot), so a caller that reads
/// a count also sees what it counted (a test that sees `connection_losses` sees the local tier
/// empty). Nothing else is ordered by them.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) local_hits: AtomicU64,
    pub(super) redis_reads: AtomicU64,
    pub(super) invalidations: AtomicU64,
    pub(super) conflicts: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) connection_losses: AtomicU64,
    pub(super) reconnects: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Release);
    }

    pub(super) fn snapshot(&self, connected: bool) -> NearCacheStats {
        NearCacheStats {
            local_hits: self.local_hits.load(Acquire),
            redis_reads: self.redis_reads.load(Acquire),
            invalidations: self.invalidations.load(Acquire),
            conflicts: self.conflicts.load(Acquire),
            flushes: self.flushes.load(Acquire),
            connection_losses: self.connection_losses.load(Acquire),
            reconnects: self.reconnects.load(Acquire),
            connected,
        }
    }
}
