//! A bounded store's accounting and admission checks ([`Builder::max_sessions`],
//! [`Builder::max_bytes`], [`WhenFull`]): the store-wide counts, the limits and the checks
//! against them. Eviction itself is a protocol step (`Store::evict`, `Shard::evict_front`).
//!
//! [`Builder::max_sessions`]: crate::Builder::max_sessions
//! [`Builder::max_bytes`]: crate::Builder::max_bytes

use crate::sync::{AtomicIsize, Ordering};
use crate::Error;
use crossbeam_utils::CachePadded;

/// The fixed memory a session costs beyond its token and data (its node, version header and
/// index entries, with the allocator's overhead), counted against
/// [`Builder::max_bytes`](crate::Builder::max_bytes). Measured as RSS growth per session
/// (BENCHMARKS.md), rounded up over both token indexes.
pub const SESSION_OVERHEAD: usize = 224;

/// What a bounded store does with a commit that would take it over a bound
/// ([`Builder::max_sessions`](crate::Builder::max_sessions),
/// [`Builder::max_bytes`](crate::Builder::max_bytes)).
///
/// ```
/// use memsession::{MemStore, WhenFull};
/// let store = MemStore::builder().max_sessions(100_000).when_full(WhenFull::Refuse).build();
/// # drop(store);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Commit, then evict the sessions that expire soonest until the store is within its
    /// bounds again. Never the session being committed. Each eviction reads the front of
    /// every shard's expiry index and pops the soonest, so it costs O(shards) reads plus one
    /// pop (a session whose entry was filed before an extension is refiled instead, and the
    /// next front tried). The default.
    #[default]
    EvictSoonest,
    /// Refuse the commit with [`Error::SessionLimit`] or [`Error::ByteLimit`], after
    /// reclaiming any expired sessions. Overwrites that do not grow the store always succeed.
    Refuse,
}

/// Store-wide sessions and bytes, kept only when the store has a bound. Updated at the
/// points where a version enters or leaves a node (a link, a swap, a tombstone CAS), each of
/// which has exactly one winner, so the counts are exact at quiescence.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub(crate) sessions: CachePadded<AtomicIsize>,
    pub(crate) bytes: CachePadded<AtomicIsize>,
}

/// A bounded store's limits and its store-wide counts (shared with its shards).
#[derive(Debug)]
pub(crate) struct Bounds {
    pub(crate) usage: std::sync::Arc<Usage>,
    max_sessions: usize,
    max_bytes: usize,
    pub(crate) when_full: WhenFull,
}

impl Bounds {
    /// `None` when neither bound is set: an unbounded store keeps no store-wide counts.
    pub(crate) fn new(
        max_sessions: Option<usize>,
        max_bytes: Option<usize>,
        when_full: WhenFull,
    ) -> Option<Bounds> {
        (max_sessions.is_some() || max_bytes.is_some()).then(|| Bounds {
            usage: std::sync::Arc::new(Usage::default()),
            max_sessions: max_sessions.unwrap_or(usize::MAX >> 1),
            max_bytes: max_bytes.unwrap_or(usize::MAX >> 1),
            when_full,
        })
    }

    /// What the bytes bound sees of `sessions` sessions holding `bytes` of tokens and data.
    fn charged(sessions: isize, bytes: isize) -> isize {
        bytes.saturating_add(sessions.saturating_mul(SESSION_OVERHEAD as isize))
    }

    fn exceeds(&self, sessions: isize, bytes: isize) -> bool {
        sessions > self.max_sessions as isize
            || Self::charged(sessions, bytes) > self.max_bytes as isize
    }

    /// What the byte bound counts now: tokens and data plus [`SESSION_OVERHEAD`] per session.
    pub(crate) fn charged_bytes(&self) -> usize {
        let u = &self.usage;
        let c = Self::charged(
            u.sessions.load(Ordering::Relaxed),
            u.bytes.load(Ordering::Relaxed),
        );
        usize::try_from(c).unwrap_or(0)
    }

    /// Sessions held, by the store-wide count.
    pub(crate) fn sessions(&self) -> usize {
        usize::try_from(self.usage.sessions.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Whether the store may be over a bound, by cheap loads (possibly stale); the byte count
    /// is read only when the session count is within its bound.
    pub(crate) fn maybe_over(&self) -> bool {
        let u = &self.usage;
        let sessions = u.sessions.load(Ordering::Relaxed);
        sessions > self.max_sessions as isize
            || Self::charged(sessions, u.bytes.load(Ordering::Relaxed)) > self.max_bytes as isize
    }

    /// Whether the store is over a bound, by the newest counts: read-modify-writes, which
    /// cannot return a value older than the latest (a stale "over" would evict one session
    /// too many). Called only after [`maybe_over`](Self::maybe_over) says it may be.
    pub(crate) fn over(&self) -> bool {
        let u = &self.usage;
        self.exceeds(
            u.sessions.fetch_add(0, Ordering::AcqRel),
            u.bytes.fetch_add(0, Ordering::AcqRel),
        )
    }

    /// A session of `size` bytes (token + data) that could not fit in an empty store.
    pub(crate) fn never_fits(&self, size: usize) -> Result<(), Error> {
        if Self::charged(1, size as isize) > self.max_bytes as isize {
            Err(Error::ByteLimit {
                max: self.max_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Whether a session of `size` bytes (token + data) fits where its token holds `held`.
    pub(crate) fn fits(&self, held: Option<usize>, size: usize) -> Result<(), Error> {
        let u = &self.usage;
        let sessions = u.sessions.load(Ordering::Relaxed) + isize::from(held.is_none());
        let bytes = u.bytes.load(Ordering::Relaxed) + size as isize - held.unwrap_or(0) as isize;
        if sessions > self.max_sessions as isize {
            Err(Error::SessionLimit {
                max: self.max_sessions,
            })
        } else if Self::charged(sessions, bytes) > self.max_bytes as isize {
            Err(Error::ByteLimit {
                max: self.max_bytes,
            })
        } else {
            Ok(())
        }
    }
}
