//! The token index, token -> node, with the small interface the protocol needs and nothing
//! more. By default a crossbeam-skiplist `base::SkipList` ordered by the keyed hash of the
//! token (held inline in the key, so a descent compares `u64`s and reads no other memory),
//! then by the token; with the `hash-index` feature a store may pick scc's `HashIndex`
//! instead ([`TokenIndex`]). Either way a node, once linked, is never replaced, and the
//! interface is the same: `with` (runs a closure on the node linked under a token;
//! guard-bound, no reference count bumped, no allocation), `insert` (insert-if-absent:
//! if a node holds the token, that node, so the caller needs no second look-up), `unlink` (remove
//! *this* node, never whatever node holds the token now; its `bool` says whether this call
//! did), `walk` (every linked node, in key order from a position).
//!
//! Under `cfg(memstore_loom)` it is a linearizable stand-in (a loom `Mutex<BTreeMap>`) with
//! the same interface: neither crate has loom support that covers our use, so loom explores
//! *our* protocol over the stand-in and trusts crossbeam-skiplist (and scc) for their own
//! linearizability (tested upstream).

/// A borrowed key: a token and its keyed hash, with no allocation. Look-ups take it, and a
/// walk resumes after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key<'a> {
    /// The token's keyed hash: orders the index; its top bits pick the shard.
    pub(crate) hash: u64,
    pub(crate) token: &'a [u8],
}

/// What the token index needs of a node: its keyed hash and its token.
pub(crate) trait Keyed: Send + Sync + 'static {
    fn key_hash(&self) -> u64;
    fn key_token(&self) -> &[u8];
}

/// Token equality in time that depends only on the lengths: a look-up never reveals how
/// much of a stored token a guess matched.
#[inline]
pub(crate) fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && constant_time_eq::constant_time_eq(a, b)
}

/// A position in the token index's key order: a walk resumes after this key (`None`: from
/// the start).
pub(crate) type After<'a> = Option<Key<'a>>;

/// Whether the key `(hash, token)` comes after the position `after`.
#[inline]
fn is_after(hash: u64, token: &[u8], after: After<'_>) -> bool {
    after.is_none_or(|a| Key { hash, token } > a)
}

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

#[cfg(not(memstore_loom))]
mod skip {
    use super::{is_after, same_token, After, Key, Keyed};
    use crate::sync::Guard;
    use crossbeam_skiplist::base::SkipList;
    use std::borrow::Borrow;
    use std::cmp::Ordering;
    use std::ops::Bound;
    use std::sync::Arc;

    /// The skiplist's key: the keyed hash inline, then the node (for its token, read only
    /// when two hashes tie).
    pub(crate) struct Linked<N> {
        hash: u64,
        node: Arc<N>,
    }

    impl<N: Keyed> Ord for Linked<N> {
        fn cmp(&self, o: &Self) -> Ordering {
            self.hash
                .cmp(&o.hash)
                .then_with(|| self.node.key_token().cmp(o.node.key_token()))
        }
    }
    impl<N: Keyed> PartialOrd for Linked<N> {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl<N: Keyed> PartialEq for Linked<N> {
        fn eq(&self, o: &Self) -> bool {
            self.cmp(o) == Ordering::Equal
        }
    }
    impl<N: Keyed> Eq for Linked<N> {}

    /// Look-ups search by the hash alone: a descent compares plain `u64`s held in the
    /// skiplist's own nodes. Keys order by hash first, so the first entry at or after a hash
    /// starts the (almost always one-entry) run of that hash, walked by token. `Borrow`'s
    /// equality contract is loosened only for hash ties, which the walk resolves.
    impl<N> Borrow<u64> for Linked<N> {
        #[inline]
        fn borrow(&self) -> &u64 {
            &self.hash
        }
    }

    /// The skiplist token index: lock-free for every operation (crossbeam-skiplist).
    pub(crate) struct SkipTokens<N>(SkipList<Linked<N>, ()>);

    impl<N: Keyed> SkipTokens<N> {
        pub(crate) fn new() -> Self {
            SkipTokens(SkipList::new(crossbeam_epoch::default_collector().clone()))
        }

        /// The first entry of `hash`'s run whose node `pick` accepts.
        #[inline]
        fn find<'g>(
            &'g self,
            hash: u64,
            guard: &'g Guard,
            mut pick: impl FnMut(&N) -> bool,
        ) -> Option<crossbeam_skiplist::base::Entry<'g, 'g, Linked<N>, ()>> {
            let mut e = self.0.lower_bound(Bound::Included(&hash), guard)?;
            loop {
                let k = e.key();
                if k.hash != hash {
                    return None;
                }
                if pick(&k.node) {
                    return Some(e);
                }
                e = e.next()?;
            }
        }

        #[inline]
        pub(crate) fn with<R>(
            &self,
            key: Key<'_>,
            guard: &Guard,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            let e = self.find(key.hash, guard, |n| same_token(n.key_token(), key.token))?;
            Some(f(&e.key().node))
        }

        pub(crate) fn insert(&self, node: &Arc<N>, guard: &Guard) -> Result<(), Option<Arc<N>>> {
            let key = Linked {
                hash: node.key_hash(),
                node: node.clone(),
            };
            let e = self.0.get_or_insert_with(key, || (), guard);
            let held = &e.key().node;
            let r = if Arc::ptr_eq(held, node) {
                Ok(())
            } else {
                Err(Some(held.clone()))
            };
            e.release(guard);
            r
        }

        pub(crate) fn unlink(&self, node: &Arc<N>, guard: &Guard) -> bool {
            self.find(node.key_hash(), guard, |n| std::ptr::eq(n, &**node))
                .is_some_and(|e| e.remove())
        }

        pub(crate) fn walk(
            &self,
            after: After<'_>,
            guard: &Guard,
            mut f: impl FnMut(u64, &Arc<N>) -> bool,
        ) {
            let mut e = match after {
                None => self.0.front(guard),
                Some(a) => self.0.lower_bound(Bound::Included(&a.hash), guard),
            };
            while let Some(cur) = e {
                let k = cur.key();
                if is_after(k.hash, k.node.key_token(), after) && !f(k.hash, &k.node) {
                    return;
                }
                e = cur.next();
            }
        }
    }
}

#[cfg(all(feature = "hash-index", not(memstore_loom)))]
mod hashed {
    use super::{is_after, same_token, After, Key, Keyed};
    use crate::sync::Guard;
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;

    /// The index's key: the node itself, hashed by its keyed hash, equal by token.
    struct Linked<N>(Arc<N>);

    impl<N> Clone for Linked<N> {
        fn clone(&self) -> Self {
            Linked(self.0.clone())
        }
    }
    impl<N: Keyed> Hash for Linked<N> {
        fn hash<H: Hasher>(&self, h: &mut H) {
            h.write_u64(self.0.key_hash());
        }
    }
    impl<N: Keyed> PartialEq for Linked<N> {
        fn eq(&self, o: &Self) -> bool {
            self.0.key_hash() == o.0.key_hash() && same_token(self.0.key_token(), o.0.key_token())
        }
    }
    impl<N: Keyed> Eq for Linked<N> {}

    /// Look-ups by the borrowed key, hashed as the index's keys are.
    impl Hash for Key<'_> {
        fn hash<H: Hasher>(&self, h: &mut H) {
            h.write_u64(self.hash);
        }
    }
    impl<N: Keyed> scc::Equivalent<Linked<N>> for Key<'_> {
        #[inline]
        fn equivalent(&self, k: &Linked<N>) -> bool {
            k.0.key_hash() == self.hash && same_token(k.0.key_token(), self.token)
        }
    }

    /// The hash token index: scc's `HashIndex` keyed by the node itself (`Arc`), no value.
    ///
    /// Entries are immutable in a `HashIndex` and may be *copied* when it resizes (a reader
    /// can see an old copy); a copy is the same `Arc`, and all mutable state lives in the node
    /// it points to, so a copy is never stale.
    pub(crate) struct HashTokens<N> {
        map: scc::HashIndex<Linked<N>, (), ahash::RandomState>,
    }

    impl<N: Keyed> HashTokens<N> {
        pub(crate) fn new() -> Self {
            // The keys are already a keyed hash; this only mixes it into scc's layout (scc
            // picks buckets by the top bits, where the shard index already took its share).
            HashTokens {
                map: scc::HashIndex::with_hasher(ahash::RandomState::with_seeds(
                    0x243f_6a88_85a3_08d3,
                    0x1319_8a2e_0370_7344,
                    0xa409_3822_299f_31d0,
                    0x082e_fa98_ec4e_6c89,
                )),
            }
        }

        /// `peek_with` pins scc's own epoch for the call: lock-free, no count bumped.
        #[inline]
        pub(crate) fn with<R>(
            &self,
            key: Key<'_>,
            _guard: &Guard,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            self.map.peek_with(&key, |k, _| f(&k.0))
        }

        /// Takes a bucket lock.
        pub(crate) fn insert(&self, node: &Arc<N>, _guard: &Guard) -> Result<(), Option<Arc<N>>> {
            match self.map.insert_sync(Linked(node.clone()), ()) {
                Ok(()) => Ok(()),
                Err(_) => {
                    let key = Key {
                        hash: node.key_hash(),
                        token: node.key_token(),
                    };
                    Err(self.map.peek_with(&key, |k, _| k.0.clone()))
                }
            }
        }

        /// Takes a bucket lock.
        pub(crate) fn unlink(&self, node: &Arc<N>, _guard: &Guard) -> bool {
            let key = Key {
                hash: node.key_hash(),
                token: node.key_token(),
            };
            match self.map.get_sync(&key) {
                Some(e) if Arc::ptr_eq(&e.key().0, node) => {
                    e.remove_entry();
                    true
                }
                _ => false,
            }
        }

        /// A hash table has no key order to resume from: collects the nodes after `after`
        /// (O(shard) memory), sorts them into the skiplist's order, then calls `f`. A resize
        /// in progress can show an entry in both tables: seen ones are skipped.
        pub(crate) fn walk(
            &self,
            after: After<'_>,
            _guard: &Guard,
            mut f: impl FnMut(u64, &Arc<N>) -> bool,
        ) {
            let guard = scc::Guard::new();
            let mut seen = HashSet::new();
            let mut nodes: Vec<Arc<N>> = self
                .map
                .iter(&guard)
                .filter(|(k, ())| is_after(k.0.key_hash(), k.0.key_token(), after))
                .filter(|(k, ())| seen.insert(Arc::as_ptr(&k.0) as usize))
                .map(|(k, ())| k.0.clone())
                .collect();
            nodes.sort_unstable_by(|a, b| {
                (a.key_hash(), a.key_token()).cmp(&(b.key_hash(), b.key_token()))
            });
            for n in &nodes {
                if !f(n.key_hash(), n) {
                    return;
                }
            }
        }
    }
}

#[cfg(not(memstore_loom))]
mod dispatch {
    use super::{After, Key, Keyed, TokenIndex};
    use crate::sync::Guard;
    use std::sync::Arc;

    /// The token index a store picked ([`TokenIndex`]).
    // The skiplist (the default) is held inline: one pointer chase less per look-up.
    #[allow(clippy::large_enum_variant)]
    pub(crate) enum Tokens<N> {
        Skip(super::skip::SkipTokens<N>),
        #[cfg(feature = "hash-index")]
        Hash(super::hashed::HashTokens<N>),
    }

    macro_rules! each {
        ($self:ident, $t:ident => $e:expr) => {
            match $self {
                Tokens::Skip($t) => $e,
                #[cfg(feature = "hash-index")]
                Tokens::Hash($t) => $e,
            }
        };
    }

    impl<N: Keyed> Tokens<N> {
        pub(crate) fn new(kind: TokenIndex) -> Self {
            match kind {
                TokenIndex::SkipList => Tokens::Skip(super::skip::SkipTokens::new()),
                #[cfg(feature = "hash-index")]
                TokenIndex::HashIndex => Tokens::Hash(super::hashed::HashTokens::new()),
            }
        }

        /// Runs `f` with the node linked under `token`, if any: lock-free, no count bumped,
        /// no allocation.
        #[inline]
        pub(crate) fn with<R>(
            &self,
            key: Key<'_>,
            guard: &Guard,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            each!(self, t => t.with(key, guard, f))
        }

        /// Whether a walk resumes from a position without collecting the index again.
        pub(crate) fn resumes(&self) -> bool {
            matches!(self, Tokens::Skip(_))
        }

        /// Links `node` if no node holds its token. `Err` with the node that holds it (`None`
        /// if that node was unlinked before it could be read: look again).
        pub(crate) fn insert(&self, node: &Arc<N>, guard: &Guard) -> Result<(), Option<Arc<N>>> {
            each!(self, t => t.insert(node, guard))
        }

        /// Unlinks `node` if it is the node linked under its token; `true` if this call did.
        pub(crate) fn unlink(&self, node: &Arc<N>, guard: &Guard) -> bool {
            each!(self, t => t.unlink(node, guard))
        }

        /// Calls `f(hash, node)` with each linked node after `after`, in `(hash, token)` order,
        /// until `f` returns `false`. Every node linked for the whole walk is seen once; one
        /// linked or unlinked meanwhile may or may not be.
        pub(crate) fn walk(
            &self,
            after: After<'_>,
            guard: &Guard,
            f: impl FnMut(u64, &Arc<N>) -> bool,
        ) {
            each!(self, t => t.walk(after, guard, f))
        }
    }
}

#[cfg(not(memstore_loom))]
pub(crate) use dispatch::Tokens;

#[cfg(memstore_loom)]
mod tokens_loom {
    use super::{is_after, After, Key, Keyed, TokenIndex};
    use crate::sync::{self, Guard, Mutex};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A linearizable stand-in for either token index: every operation holds one loom mutex.
    /// Nodes are std `Arc`s, as in the real index (their counts are not part of the
    /// protocol); unlinked ones are kept until the index drops, as the epoch would keep them.
    pub(crate) struct Tokens<N> {
        map: Mutex<BTreeMap<(u64, Vec<u8>), Arc<N>>>,
        unlinked: std::sync::Mutex<Vec<Arc<N>>>,
    }

    impl<N: Keyed> Tokens<N> {
        pub(crate) fn new(_kind: TokenIndex) -> Self {
            Tokens {
                map: Mutex::new(BTreeMap::new()),
                unlinked: std::sync::Mutex::new(Vec::new()),
            }
        }

        /// Runs `f` with the linked node, *outside* the mutex (as the real index runs it
        /// outside any lock), so that `f` may unlink.
        pub(crate) fn with<R>(
            &self,
            key: Key<'_>,
            _guard: &Guard,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            let node = sync::lock(&self.map)
                .get(&(key.hash, key.token.to_vec()))
                .cloned();
            node.map(|n| f(&n))
        }

        pub(crate) fn resumes(&self) -> bool {
            true
        }

        pub(crate) fn insert(&self, node: &Arc<N>, _guard: &Guard) -> Result<(), Option<Arc<N>>> {
            let key = (node.key_hash(), node.key_token().to_vec());
            let mut map = sync::lock(&self.map);
            if let Some(held) = map.get(&key) {
                return Err(Some(held.clone()));
            }
            map.insert(key, node.clone());
            Ok(())
        }

        pub(crate) fn unlink(&self, node: &Arc<N>, _guard: &Guard) -> bool {
            let key = (node.key_hash(), node.key_token().to_vec());
            let mut map = sync::lock(&self.map);
            let ours = map.get(&key).is_some_and(|n| Arc::ptr_eq(n, node));
            let removed = if ours { map.remove(&key) } else { None };
            drop(map);
            self.unlinked.lock().unwrap().extend(removed);
            ours
        }

        pub(crate) fn walk(
            &self,
            after: After<'_>,
            _guard: &Guard,
            mut f: impl FnMut(u64, &Arc<N>) -> bool,
        ) {
            let nodes: Vec<_> = sync::lock(&self.map)
                .iter()
                .filter(|((h, t), _)| is_after(*h, t, after))
                .map(|((h, _), n)| (*h, n.clone()))
                .collect();
            for (h, n) in &nodes {
                if !f(*h, n) {
                    return;
                }
            }
        }
    }
}

#[cfg(memstore_loom)]
pub(crate) use tokens_loom::Tokens;
