//! What a shard holds (its token indexes, expiry index, hint table and counts) and the ways
//! to a node that every operation shares: the token index that holds a hash, the look-up
//! through the hint table, a walk in key order, and the accounting of each change.

use crate::raw::bounds::Usage;
use crate::raw::expiry_index::ExpiryIndex;
use crate::raw::hints::Hints;
use crate::raw::node::Node;
use crate::raw::token_index::{After, Key, TokenIndex, Tokens};
use crate::sync::{Guard, Ordering, StatI64};
use std::sync::Arc;

/// An expiry index key: (deadline, node id).
pub(super) type ExpKey = (u64, usize);

/// One shard: both indexes and its share of the accounting.
pub(crate) struct Shard {
    /// The token index, split by the hash bits after the shard's into skiplists small enough
    /// to be shallow (a hash index is one table): see [`Shard::new`].
    tokens: Box<[Tokens<Node>]>,
    /// `hash >> sub_shift`, masked, picks the token index of `hash` within this shard.
    sub_shift: u32,
    /// The expiry index: `(deadline, node id)` -> the node (see the layout in `mod.rs`).
    pub(super) expiry: ExpiryIndex<ExpKey, Arc<Node>>,
    /// Point operations' way to a node without a descent (`hints.rs`); skiplist index only.
    pub(super) hints: Option<Hints>,
    /// Sessions (linked, not tombstoned) in this shard; statistics only.
    sessions: StatI64,
    /// Bytes (token + data) of the versions in this shard; statistics only.
    bytes: StatI64,
    /// The store-wide counters that bounds are checked against; only for bounded stores.
    usage: Option<std::sync::Arc<Usage>>,
    /// This shard's place in the store (its word in [`Usage::fronts`]).
    pub(super) index: usize,
}

/// The bytes a session holds: its token and its data.
pub(super) fn size(token: &[u8], data: &[u8]) -> isize {
    (token.len() + data.len()) as isize
}

impl Shard {
    /// A shard of a store whose hashes' top `shard_bits` pick the shard. A skiplist token
    /// index is split into `2^sub_bits` skiplists by the next bits: a descent's length is
    /// log2 of the sessions per skiplist, so more, smaller skiplists are shallower, while
    /// the expiry index (which cleanup and eviction visit shard by shard) stays one per shard.
    pub(crate) fn new(
        usage: Option<std::sync::Arc<Usage>>,
        kind: TokenIndex,
        shard_bits: u32,
        sub_bits: u32,
        hints: bool,
        index: usize,
    ) -> Self {
        // A hash index is one table; under loom one stand-in map models any split.
        let split = kind == TokenIndex::SkipList && !cfg!(memstore_loom);
        let sub_bits = if split { sub_bits } else { 0 };
        Shard {
            tokens: (0..1usize << sub_bits).map(|_| Tokens::new(kind)).collect(),
            sub_shift: 64 - shard_bits - sub_bits,
            expiry: ExpiryIndex::new(),
            hints: (hints && kind == TokenIndex::SkipList).then(Hints::new),
            sessions: StatI64::new(0),
            bytes: StatI64::new(0),
            usage,
            index,
        }
    }

    /// After filing an entry at `deadline`: a bounded store's word for this shard's front.
    #[inline]
    pub(super) fn note_filed(&self, deadline: u64) {
        if let Some(u) = &self.usage {
            u.fronts.lower(self.index, deadline);
        }
    }

    /// After popping entries (a cleanup pass, an eviction): a bounded store's word for this
    /// shard's front moves up to the first entry left (from `seen`, the word as read before).
    pub(crate) fn note_popped(&self, seen: u64, guard: &Guard) {
        if let Some(u) = &self.usage {
            let first = self.expiry.front(guard).map_or(u64::MAX, |e| e.key().0);
            u.fronts.raise(self.index, seen, first);
        }
    }

    /// This shard's word in a bounded store's fronts (`u64::MAX` when unbounded).
    pub(super) fn front_word(&self) -> u64 {
        self.usage
            .as_ref()
            .map_or(u64::MAX, |u| u.fronts.get(self.index))
    }

    /// The token index that holds `hash`.
    #[inline]
    pub(super) fn tokens_of(&self, hash: u64) -> &Tokens<Node> {
        &self.tokens[self.sub_index(hash)]
    }

    /// Which of this shard's token indexes holds `hash`.
    #[inline]
    fn sub_index(&self, hash: u64) -> usize {
        (hash.checked_shr(self.sub_shift).unwrap_or(0) as usize) & (self.tokens.len() - 1)
    }

    /// Unlinks `node` from the token index if it is the node linked under its token; `true`
    /// if this call did.
    pub(super) fn unlink(&self, node: &Arc<Node>, guard: &Guard) -> bool {
        self.tokens_of(node.hash).unlink(node, guard)
    }

    /// Runs `f` with `key`'s node, if one is linked: lock-free, no count bumped. The node
    /// is borrowed for the call only; versions loaded from it live as long as `guard` (they
    /// are retired to the epoch, and a linked node is only freed once tombstoned). A live
    /// hint (H3) skips the descent; a descent that finds a live node publishes its hint (H2).
    #[inline]
    pub(super) fn with_node<R>(
        &self,
        key: Key<'_>,
        guard: &Guard,
        f: impl FnOnce(&Arc<Node>) -> R,
    ) -> Option<R> {
        self.with_node_hinting(key, true, guard, f)
    }

    /// [`with_node`](Self::with_node); `publish: false` for a caller about to remove the
    /// session (a delete), which has no use for a hint.
    #[inline]
    pub(super) fn with_node_hinting<R>(
        &self,
        key: Key<'_>,
        publish: bool,
        guard: &Guard,
        f: impl FnOnce(&Arc<Node>) -> R,
    ) -> Option<R> {
        let Some(hints) = &self.hints else {
            return self.tokens_of(key.hash).with(key, guard, f);
        };
        if let Some(node) = hints.get(key, guard) {
            return Some(f(&node));
        }
        self.tokens_of(key.hash).with(key, guard, |node| {
            if publish {
                hints.publish(node, guard);
            }
            f(node)
        })
    }

    /// Calls `f(hash, node)` with each linked node after `after`, in key order, until `f`
    /// returns `false`.
    pub(super) fn walk(
        &self,
        after: After<'_>,
        guard: &Guard,
        mut f: impl FnMut(u64, &Arc<Node>) -> bool,
    ) {
        let first = after.map_or(0, |a| self.sub_index(a.hash));
        let mut go = true;
        for (i, t) in self.tokens.iter().enumerate().skip(first) {
            let after = if i == first { after } else { None };
            t.walk(after, guard, |h, n| {
                go = f(h, n);
                go
            });
            if !go {
                return;
            }
        }
    }

    /// How many sessions a walk should take per pin: `batch` where the index resumes in key
    /// order cheaply (the skiplist), the whole shard where resuming means collecting it again.
    pub(crate) fn walk_batch(&self, batch: usize) -> usize {
        if self.tokens[0].resumes() {
            batch
        } else {
            usize::MAX
        }
    }

    /// Records a change in what this shard holds.
    #[inline]
    pub(super) fn account(&self, sessions: isize, bytes: isize) {
        if sessions != 0 {
            self.sessions
                .fetch_add(sessions as i64, std::sync::atomic::Ordering::Relaxed);
        }
        if bytes != 0 {
            self.bytes
                .fetch_add(bytes as i64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(u) = &self.usage {
            if sessions != 0 {
                u.sessions.fetch_add(sessions, Ordering::Relaxed);
            }
            if bytes != 0 {
                u.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Sessions held (expired ones not yet reclaimed included).
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.sessions.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0)
    }

    /// Bytes (tokens + data) held by this shard.
    pub(crate) fn bytes(&self) -> i64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Entries in the expiry index (live sessions plus stale entries).
    pub(crate) fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// Bytes of this shard's hint table (0 without one).
    pub(crate) fn hint_table_bytes(&self, guard: &Guard) -> usize {
        self.hints.as_ref().map_or(0, |h| h.bytes(guard))
    }

    /// Hints in this shard's table to tombstoned nodes (only races leave them: H2).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn dead_hints(&self, guard: &Guard) -> usize {
        self.hints.as_ref().map_or(0, |h| h.dead_hints(guard))
    }
}
