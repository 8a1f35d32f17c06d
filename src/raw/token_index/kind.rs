//! [`TokenIndex`]: which structure a store's builder picked to hold its token index.

/// Which structure holds a store's token index ([`Builder::token_index`](crate::Builder::token_index)).
///
/// - [`SkipList`](TokenIndex::SkipList), the default: a crossbeam skiplist per shard, ordered
///   by the keyed hash of the token. Lock-free for every operation (reads, fresh commits,
///   deletes, cleanup, eviction); never resizes, so no reader meets resize work and its memory
///   grows exactly with the sessions; [`MemStore::iter`](crate::MemStore::iter) walks it in
///   key order with O(1) extra memory and can resume from a [`Cursor`](crate::Cursor). Point
///   operations on a known token start from the shard's hint table (a bucket, the node, the
///   version: no descent); a new session or a hint that missed costs a descent, O(log n)
///   dependent loads.
/// - `HashIndex` (with the `hash-index` feature): scc's `HashIndex` per shard. Point reads
///   about as fast as the default's hints, new sessions and cleanup faster (no descent to
///   link or unlink), but inserts and removals take a bucket lock, the table resizes as it
///   grows, and a walk must collect and sort a shard's sessions to resume from a cursor.
///
/// Both run the same protocol (an overwrite never replaces a node; cleanup and eviction
/// tombstone only the version they examined), so every guarantee in the crate docs holds for
/// both. The feature only makes the choice available: a store uses the hash index only when
/// its builder asks for it, so enabling the feature elsewhere in a dependency graph changes no
/// store's behaviour.
///
/// ```
/// use memsession::{MemStore, TokenIndex};
/// let store = MemStore::builder().token_index(TokenIndex::SkipList).build();
/// # drop(store);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenIndex {
    /// A crossbeam skiplist per shard (the default).
    #[default]
    SkipList,
    /// scc's `HashIndex` per shard (feature `hash-index`).
    #[cfg(feature = "hash-index")]
    HashIndex,
}
