//! A bounded store's accounting and admission checks ([`Builder::max_sessions`],
//! [`Builder::max_bytes`], [`WhenFull`]): the store-wide counts, the limits and the checks
//! against them. Eviction itself is a protocol step (`Store::evict`, `Shard::evict_front`).
//!
//! [`Builder::max_sessions`]: crate::Builder::max_sessions
//! [`Builder::max_bytes`]: crate::Builder::max_bytes

use crate::sync::{AtomicIsize, Ordering};
// The fronts are advisory (see [`Fronts`]): plain atomics, outside loom's model.
use crate::Error;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

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
    /// bounds again. Never the session being committed. Each eviction finds the soonest
    /// shard in one word per shard (eight to a cache line, no pointer chased), reads that
    /// shard's expiry front and pops it (a session whose entry was filed before an extension
    /// is refiled instead, and the next front tried). Under concurrent commits "soonest" is
    /// approximate: a session about as soon may go first. The default.
    #[default]
    EvictSoonest,
    /// Refuse the commit with [`Error::SessionLimit`] or [`Error::ByteLimit`], after
    /// reclaiming any expired sessions. Overwrites that do not grow the store always succeed.
    Refuse,
}

/// Store-wide sessions and bytes, kept only when the store has a bound. Updated at the
/// points where a version enters or leaves a node (a link, a swap, a tombstone CAS), each of
/// which has exactly one winner, so the counts are exact at quiescence.
#[derive(Debug)]
pub(crate) struct Usage {
    pub(crate) sessions: CachePadded<AtomicIsize>,
    pub(crate) bytes: CachePadded<AtomicIsize>,
    /// Where each shard's soonest session is, for eviction.
    pub(crate) fronts: Fronts,
}

impl Usage {
    fn new(shards: usize) -> Usage {
        Usage {
            sessions: CachePadded::new(AtomicIsize::new(0)),
            bytes: CachePadded::new(AtomicIsize::new(0)),
            fronts: Fronts((0..shards).map(|_| StdAtomicU64::new(u64::MAX)).collect()),
        }
    }
}

/// One word per shard, eight to a cache line: the deadline of the shard's first expiry
/// entry, or less (`u64::MAX`: none seen). Eviction finds the shard to evict from in these
/// words rather than in every shard's expiry index. Filing an entry lowers its shard's word
/// ([`lower`](Self::lower)); an evictor that has just read a shard's first entry raises the
/// word to it ([`raise`](Self::raise)). Single-threaded the words are exact or low, so the
/// soonest session is the one evicted; a raise that races a filing can leave a word high,
/// which changes only which session goes first (eviction pops the real front of the shard it
/// picks, through the protocol's own steps), and when every word reads `u64::MAX` eviction
/// reads the shards themselves, so a bound is never left unenforced.
#[derive(Debug)]
pub(crate) struct Fronts(Box<[StdAtomicU64]>);

impl Fronts {
    /// After filing an entry at `deadline` in `shard`.
    #[inline]
    pub(crate) fn lower(&self, shard: usize, deadline: u64) {
        let w = &self.0[shard];
        if w.load(StdOrdering::Relaxed) > deadline {
            w.fetch_min(deadline, StdOrdering::AcqRel);
        }
    }

    /// `shard`'s word.
    pub(crate) fn get(&self, shard: usize) -> u64 {
        self.0[shard].load(StdOrdering::Acquire)
    }

    /// Moves `shard`'s word from `seen` up to `first`, the deadline of its first entry as the
    /// caller has just read it; a filing that lowered the word since `seen` wins.
    pub(crate) fn raise(&self, shard: usize, seen: u64, first: u64) {
        if first > seen {
            let _ = self.0[shard].compare_exchange(
                seen,
                first,
                StdOrdering::AcqRel,
                StdOrdering::Relaxed,
            );
        }
    }

    /// The shard with the lowest word and that word, reading `instead.1` for shard
    /// `instead.0`; `None` if every word is `u64::MAX`.
    pub(crate) fn soonest(&self, instead: Option<(usize, u64)>) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, w) in self.0.iter().enumerate() {
            let d = match instead {
                Some((j, d)) if j == i => d,
                _ => w.load(StdOrdering::Acquire),
            };
            if d != u64::MAX && best.is_none_or(|(_, b)| d < b) {
                best = Some((i, d));
            }
        }
        best
    }
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
        shards: usize,
    ) -> Option<Bounds> {
        (max_sessions.is_some() || max_bytes.is_some()).then(|| Bounds {
            usage: std::sync::Arc::new(Usage::new(shards)),
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
