//! [`Stats`]: a store's counters and sizes.

use crate::raw::{self, Counters, TokenIndex};

/// Counters and sizes of a [`MemStore`](crate::MemStore), from [`MemStore::stats`](crate::MemStore::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions held, expired ones not yet reclaimed included ([`MemStore::len`](crate::MemStore::len)).
    pub sessions: usize,
    /// Entries in the expiry index: one per session plus stale ones (left by races, see
    /// [`stale_dropped`](Self::stale_dropped)), each dropped when cleanup reaches its deadline.
    pub expiry_entries: usize,
    /// The number of shards.
    pub shards: usize,
    /// The token index's structure.
    pub token_index: TokenIndex,
    /// Cleanup passes run (by the thread and by [`MemStore::cleanup_now`](crate::MemStore::cleanup_now)).
    pub cleanup_passes: u64,
    /// Expired sessions reclaimed by cleanup.
    pub reclaimed: u64,
    /// Expiry entries that came due for a session whose deadline had moved later: refiled.
    pub rescheduled: u64,
    /// Stale expiry entries dropped by cleanup (and eviction): entries that no longer stood
    /// for their session, left when a deadline shortening or a delete raced cleanup or
    /// another commit. The same count is the `stale_dropped` field of each cleanup pass's
    /// `tracing` event (that pass's share) and, feature `metrics`,
    /// `memstore_stale_dropped_total`.
    pub stale_dropped: u64,
    /// Sessions evicted to keep a bounded store within its bounds.
    pub evicted: u64,
    /// Background cleanup passes that panicked (a bug, or a custom [`Clock`](crate::Clock) that
    /// panics). The thread catches the panic and goes on: the next pass runs on time.
    pub cleanup_panics: u64,
    /// Bytes held: tokens plus data of every session held. Not what
    /// [`Builder::max_bytes`](crate::Builder::max_bytes) is checked against: see
    /// [`charged_bytes`](Self::charged_bytes).
    pub bytes: usize,
    /// What [`Builder::max_bytes`](crate::Builder::max_bytes) counts: [`bytes`](Self::bytes)
    /// plus [`SESSION_OVERHEAD`](crate::SESSION_OVERHEAD) per session (the node, version
    /// header and index entries each session costs). A store at its byte bound shows this
    /// near the bound, while `bytes` may read a fraction of it.
    pub charged_bytes: usize,
    /// Bytes of the hint tables that take point operations to a session's node without a
    /// descent of the skiplist token index (about 16-32 bytes per session; 0 with the hash
    /// index).
    pub hint_table_bytes: usize,
    /// Reads (`find`, `find_with`) that returned a session.
    pub hits: u64,
    /// Reads of tokens that hold no session.
    pub misses: u64,
    /// Reads of sessions whose expiry had passed (not returned; cleanup had not reclaimed
    /// them yet).
    pub expired_on_read: u64,
}

impl Stats {
    /// Sums `raw`'s counters and sizes.
    pub(crate) fn of(raw: &raw::Store) -> Stats {
        let c = &raw.counters;
        Stats {
            sessions: raw.len(),
            expiry_entries: raw.expiry_entries(),
            shards: raw.shards().len(),
            token_index: raw.token_index,
            cleanup_passes: Counters::get(&c.passes),
            reclaimed: Counters::get(&c.reclaimed),
            rescheduled: Counters::get(&c.rescheduled),
            stale_dropped: Counters::get(&c.stale),
            evicted: Counters::get(&c.evicted),
            cleanup_panics: Counters::get(&c.cleanup_panics),
            bytes: raw.bytes(),
            charged_bytes: raw.charged_bytes(),
            hint_table_bytes: raw.hint_table_bytes(),
            hits: raw.reads.sum(|s| &s.hits),
            misses: raw.reads.sum(|s| &s.misses),
            expired_on_read: raw.reads.sum(|s| &s.expired),
        }
    }
}
