//! The two indexes, each with a small interface that the protocol needs and nothing more.
//!
//! - [`Hashed`]: the primary index, token -> node. scc's `HashIndex` (lock-free reads: a
//!   `peek` takes no lock and writes no shared memory); a node, once linked, is never replaced.
//!   `with` (runs a closure on the linked node; no reference count bumped), `insert`
//!   (insert-if-absent: `false` if a node holds the token, and the caller looks it up again),
//!   `unlink` (remove *this* node, never whatever node holds the token now; its `bool` says
//!   whether this call did), `for_each`.
//! - [`Ordered`]: the expiry index, a crossbeam-skiplist `base::SkipList`:
//!   `get`, `front`, `iter`, `Entry::next` (guard-bound entries), `get_or_insert_with`
//!   (insert-if-absent), `Entry::remove` (unlink *this* node, a CAS on its tower), `remove` by
//!   key (result ignored: crossbeam #1143, two removers can both get `Some`).
//!
//! Under `cfg(memstore_loom)` both are linearizable stand-ins (a loom `Mutex<BTreeMap>`) with
//! the same interface: neither crate has loom support that covers our use, so loom explores
//! *our* protocol over the stand-ins and trusts scc and crossbeam-skiplist for their own
//! linearizability (tested upstream).
//!
//! Why a hash index for tokens (DESIGN.md first had a skiplist): a look-up is the hot path of
//! a session store, and a skiplist descent at 1M sessions is ~20 dependent cache misses, a
//! hash look-up two or three. Measured (benches/contention.rs, 2 threads, read-heavy 1M):
//! the skiplist primary ran at 0.31x scc's `HashMap`; see BENCHMARKS.md for the hash index.
//! Token order was never part of the contract, and the keyed hash still decides placement.

/// What the primary index needs of a node: its keyed hash and its token.
pub(crate) trait Keyed: Send + Sync + 'static {
    fn key_hash(&self) -> u64;
    fn key_token(&self) -> &[u8];
}

#[cfg(not(memstore_loom))]
mod hashed {
    use super::Keyed;
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;

    /// Token equality in time that depends only on the lengths: a look-up never reveals how
    /// much of a stored token a guess matched.
    #[inline]
    fn same_token(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && constant_time_eq::constant_time_eq(a, b)
    }

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

    /// A borrowed look-up key: the caller's token and its keyed hash (no allocation).
    struct Lookup<'a> {
        hash: u64,
        token: &'a [u8],
    }
    impl Hash for Lookup<'_> {
        fn hash<H: Hasher>(&self, h: &mut H) {
            h.write_u64(self.hash);
        }
    }
    impl<N: Keyed> scc::Equivalent<Linked<N>> for Lookup<'_> {
        #[inline]
        fn equivalent(&self, k: &Linked<N>) -> bool {
            k.0.key_hash() == self.hash && same_token(k.0.key_token(), self.token)
        }
    }

    /// The primary index: scc's `HashIndex` keyed by the node itself (`Arc`), no value.
    ///
    /// Entries are immutable in a `HashIndex` and may be *copied* when it resizes (a reader
    /// can see an old copy); a copy is the same `Arc`, and all mutable state lives in the node
    /// it points to, so a copy is never stale.
    pub(crate) struct Hashed<N> {
        map: scc::HashIndex<Linked<N>, (), ahash::RandomState>,
    }

    impl<N: Keyed> Hashed<N> {
        pub(crate) fn new() -> Self {
            // The keys are already a keyed hash; this only mixes it into scc's layout (the
            // shard is picked by the top bits, so the raw value would not spread here).
            Hashed {
                map: scc::HashIndex::with_hasher(ahash::RandomState::with_seeds(
                    0x243f_6a88_85a3_08d3,
                    0x1319_8a2e_0370_7344,
                    0xa409_3822_299f_31d0,
                    0x082e_fa98_ec4e_6c89,
                )),
            }
        }

        /// Runs `f` with the node linked under `token`, if any: lock-free (`peek_with`
        /// pins scc's epoch for the call), bumps no count.
        #[inline]
        pub(crate) fn with<R>(
            &self,
            hash: u64,
            token: &str,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            let key = Lookup {
                hash,
                token: token.as_bytes(),
            };
            self.map.peek_with(&key, |k, _| f(&k.0))
        }

        /// Links `node` if no node holds its token; `true` if it did.
        pub(crate) fn insert(&self, node: Arc<N>) -> bool {
            self.map.insert_sync(Linked(node), ()).is_ok()
        }

        /// Unlinks `node` if it is the node linked under its token; `true` if this call did.
        pub(crate) fn unlink(&self, node: &Arc<N>) -> bool {
            let key = Lookup {
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

        /// Calls `f` with each linked node once (a resize in progress can show an entry in
        /// both the old and the new table: seen ones are skipped).
        pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<N>)) {
            let guard = scc::Guard::new();
            let mut seen = HashSet::new();
            for (k, ()) in self.map.iter(&guard) {
                if seen.insert(Arc::as_ptr(&k.0) as usize) {
                    f(&k.0);
                }
            }
        }
    }
}

#[cfg(memstore_loom)]
mod hashed {
    use super::Keyed;
    use crate::sync::{self, Mutex};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A linearizable stand-in for the hash index: every operation holds one loom mutex.
    /// Nodes are std `Arc`s, as in the real index (their counts are not part of the
    /// protocol); unlinked ones are kept until the index drops, as the epoch would keep them.
    pub(crate) struct Hashed<N> {
        map: Mutex<BTreeMap<(u64, Vec<u8>), Arc<N>>>,
        unlinked: std::sync::Mutex<Vec<Arc<N>>>,
    }

    impl<N: Keyed> Hashed<N> {
        pub(crate) fn new() -> Self {
            Hashed {
                map: Mutex::new(BTreeMap::new()),
                unlinked: std::sync::Mutex::new(Vec::new()),
            }
        }

        /// Runs `f` with the linked node, *outside* the mutex (as the real index runs it
        /// outside any lock), so that `f` may unlink.
        pub(crate) fn with<R>(
            &self,
            hash: u64,
            token: &str,
            f: impl FnOnce(&Arc<N>) -> R,
        ) -> Option<R> {
            let node = sync::lock(&self.map)
                .get(&(hash, token.as_bytes().to_vec()))
                .cloned();
            node.map(|n| f(&n))
        }

        pub(crate) fn insert(&self, node: Arc<N>) -> bool {
            let key = (node.key_hash(), node.key_token().to_vec());
            let mut map = sync::lock(&self.map);
            if map.contains_key(&key) {
                return false;
            }
            map.insert(key, node);
            true
        }

        pub(crate) fn unlink(&self, node: &Arc<N>) -> bool {
            let key = (node.key_hash(), node.key_token().to_vec());
            let mut map = sync::lock(&self.map);
            let ours = map.get(&key).is_some_and(|n| Arc::ptr_eq(n, node));
            let removed = if ours { map.remove(&key) } else { None };
            drop(map);
            self.unlinked.lock().unwrap().extend(removed);
            ours
        }

        pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<N>)) {
            let nodes: Vec<_> = sync::lock(&self.map).values().cloned().collect();
            for n in &nodes {
                f(n);
            }
        }
    }
}

pub(crate) use hashed::Hashed;

/// The ordered (expiry) index.
#[cfg(not(memstore_loom))]
mod imp {
    use crate::sync::Guard;
    use crossbeam_skiplist::base::{self, RefEntry, SkipList};
    use std::borrow::Borrow;

    pub(crate) struct Ordered<K, V>(SkipList<K, V>);

    /// An entry, valid while the guard it was found under lives.
    pub(crate) enum Entry<'g, K, V> {
        Guarded(base::Entry<'g, 'g, K, V>),
        Counted(Option<RefEntry<'g, K, V>>, &'g Guard),
    }

    impl<K: Ord + Send + 'static, V: Send + 'static> Ordered<K, V> {
        pub(crate) fn new() -> Self {
            Ordered(SkipList::new(crossbeam_epoch::default_collector().clone()))
        }

        #[inline]
        pub(crate) fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            self.0.get(key, guard).map(Entry::Guarded)
        }

        pub(crate) fn front<'g>(&'g self, guard: &'g Guard) -> Option<Entry<'g, K, V>> {
            self.0.front(guard).map(Entry::Guarded)
        }

        pub(crate) fn iter<'g>(
            &'g self,
            guard: &'g Guard,
        ) -> impl Iterator<Item = Entry<'g, K, V>> + 'g {
            self.0.iter(guard).map(Entry::Guarded)
        }

        /// The entry under `key`, inserting `value()` if there is none. `value` may run and
        /// its result be dropped if another thread inserts the key first.
        pub(crate) fn get_or_insert_with<'g>(
            &'g self,
            key: K,
            value: impl FnOnce() -> V,
            guard: &'g Guard,
        ) -> Entry<'g, K, V> {
            Entry::Counted(Some(self.0.get_or_insert_with(key, value, guard)), guard)
        }

        pub(crate) fn remove<Q>(&self, key: &Q, guard: &Guard)
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            if let Some(e) = self.0.remove(key, guard) {
                e.release(guard);
            }
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl<'g, K: Ord + Send + 'static, V: Send + 'static> Entry<'g, K, V> {
        #[inline]
        pub(crate) fn key(&self) -> &K {
            match self {
                Entry::Guarded(e) => e.key(),
                Entry::Counted(e, _) => e.as_ref().map(RefEntry::key).expect("entry present"),
            }
        }

        #[inline]
        pub(crate) fn value(&self) -> &V {
            match self {
                Entry::Guarded(e) => e.value(),
                Entry::Counted(e, _) => e.as_ref().map(RefEntry::value).expect("entry present"),
            }
        }

        /// Unlinks this node; `true` if this call did it.
        pub(crate) fn remove(&self) -> bool {
            match self {
                Entry::Guarded(e) => e.remove(),
                Entry::Counted(e, g) => e.as_ref().is_some_and(|e| e.remove(g)),
            }
        }

        /// The next entry in key order.
        pub(crate) fn next(&self) -> Option<Entry<'g, K, V>> {
            match self {
                Entry::Guarded(e) => e.next().map(Entry::Guarded),
                Entry::Counted(e, g) => e
                    .as_ref()
                    .and_then(|e| e.next(g))
                    .map(|n| Entry::Counted(Some(n), g)),
            }
        }
    }

    impl<K, V> Drop for Entry<'_, K, V> {
        fn drop(&mut self) {
            if let Entry::Counted(e, g) = self {
                if let Some(e) = e.take() {
                    e.release(g);
                }
            }
        }
    }
}

#[cfg(memstore_loom)]
mod imp {
    use crate::sync::{self, Guard, Mutex};
    use std::borrow::Borrow;
    use std::collections::BTreeMap;
    use std::marker::PhantomData;
    use std::ops::Bound;

    // Items are shared with a *std* `Arc`: every change to the map happens under the loom
    // mutex, which orders it; a loom `Arc` would only add a branch point per clone and drop
    // (the skiplist's guarded entries bump no count at all).
    use std::sync::Arc;

    /// A linearizable stand-in for the skiplist: every operation holds one loom mutex.
    ///
    /// Unlinked items are kept until the index drops, as the epoch would keep them until no
    /// guard can see them: the protocol hands out references that outlive their entry (a
    /// `find` returns the version it read), so freeing a node at its last entry's drop would
    /// be a use-after-free the real code does not have.
    pub(crate) struct Ordered<K, V> {
        map: Mutex<BTreeMap<K, Arc<(K, V)>>>,
        // A plain std mutex: bookkeeping outside the model, never contended within a step.
        unlinked: std::sync::Mutex<Vec<Arc<(K, V)>>>,
    }

    pub(crate) struct Entry<'g, K, V> {
        index: &'g Ordered<K, V>,
        item: Arc<(K, V)>,
        _guard: PhantomData<&'g Guard>,
    }

    impl<K: Ord + Clone, V> Ordered<K, V> {
        pub(crate) fn new() -> Self {
            Ordered {
                map: Mutex::new(BTreeMap::new()),
                unlinked: std::sync::Mutex::new(Vec::new()),
            }
        }

        fn entry(&self, item: &Arc<(K, V)>) -> Entry<'_, K, V> {
            Entry {
                index: self,
                item: item.clone(),
                _guard: PhantomData,
            }
        }

        pub(crate) fn get<'g, Q>(&'g self, key: &Q, _guard: &'g Guard) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            sync::lock(&self.map).get(key).map(|i| self.entry(i))
        }

        pub(crate) fn front<'g>(&'g self, _guard: &'g Guard) -> Option<Entry<'g, K, V>> {
            sync::lock(&self.map)
                .first_key_value()
                .map(|(_, i)| self.entry(i))
        }

        pub(crate) fn iter<'g>(
            &'g self,
            _guard: &'g Guard,
        ) -> impl Iterator<Item = Entry<'g, K, V>> + 'g {
            let items: Vec<_> = sync::lock(&self.map).values().cloned().collect();
            items.into_iter().map(move |item| Entry {
                index: self,
                item,
                _guard: PhantomData,
            })
        }

        pub(crate) fn get_or_insert_with<'g>(
            &'g self,
            key: K,
            value: impl FnOnce() -> V,
            _guard: &'g Guard,
        ) -> Entry<'g, K, V> {
            let mut map = sync::lock(&self.map);
            let item = map
                .entry(key.clone())
                .or_insert_with(|| Arc::new((key, value())))
                .clone();
            drop(map);
            Entry {
                index: self,
                item,
                _guard: PhantomData,
            }
        }

        pub(crate) fn remove<Q>(&self, key: &Q, _guard: &Guard)
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            let removed = sync::lock(&self.map).remove(key);
            self.unlinked.lock().unwrap().extend(removed);
        }

        pub(crate) fn len(&self) -> usize {
            sync::lock(&self.map).len()
        }
    }

    impl<'g, K: Ord + Clone, V> Entry<'g, K, V> {
        pub(crate) fn key(&self) -> &K {
            &self.item.0
        }

        pub(crate) fn value(&self) -> &V {
            &self.item.1
        }

        pub(crate) fn remove(&self) -> bool {
            let mut map = sync::lock(&self.index.map);
            let ours = map
                .get(&self.item.0)
                .is_some_and(|i| Arc::ptr_eq(i, &self.item));
            let removed = if ours { map.remove(&self.item.0) } else { None };
            drop(map);
            self.index.unlinked.lock().unwrap().extend(removed);
            ours
        }

        pub(crate) fn next(&self) -> Option<Entry<'g, K, V>> {
            let index = self.index;
            sync::lock(&index.map)
                .range::<K, _>((Bound::Excluded(&self.item.0), Bound::Unbounded))
                .next()
                .map(|(_, i)| index.entry(i))
        }
    }
}

pub(crate) use imp::{Entry, Ordered};
