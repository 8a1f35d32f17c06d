//! The expiry index: `(deadline, node id)` -> node, a crossbeam-skiplist `base::SkipList`,
//! with the small interface the protocol needs: `front`, `Entry::next` and `Entry::remove`
//! (unlink *this* entry, a CAS on its tower), `insert_if_absent`, `remove` by key (its result
//! is not used: crossbeam #1143, two removers can both get `Some`), and for the invariant
//! checks `get` and `iter`. Entries are guard-bound: no reference count is bumped.
//!
//! Under `cfg(memstore_loom)` it is a linearizable stand-in (a loom `Mutex<BTreeMap>`) with
//! the same interface: crossbeam-skiplist has no loom support that covers our use, so loom
//! explores *our* protocol over the stand-in and trusts the skiplist's own linearizability
//! (tested upstream).

#[cfg(not(memstore_loom))]
mod imp {
    use crate::sync::Guard;
    use crossbeam_skiplist::base::{self, SkipList};
    use std::borrow::Borrow;

    pub(crate) struct ExpiryIndex<K, V>(SkipList<K, V>);

    /// An entry, valid while the guard it was found under lives.
    pub(crate) struct Entry<'g, K, V>(base::Entry<'g, 'g, K, V>);

    impl<K: Ord + Send + 'static, V: Send + 'static> ExpiryIndex<K, V> {
        pub(crate) fn new() -> Self {
            ExpiryIndex(SkipList::new(crossbeam_epoch::default_collector().clone()))
        }

        #[cfg(feature = "test-hooks")] // the invariant checks
        #[inline]
        pub(crate) fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            self.0.get(key, guard).map(Entry)
        }

        pub(crate) fn front<'g>(&'g self, guard: &'g Guard) -> Option<Entry<'g, K, V>> {
            self.0.front(guard).map(Entry)
        }

        #[cfg(feature = "test-hooks")] // the invariant checks
        pub(crate) fn iter<'g>(
            &'g self,
            guard: &'g Guard,
        ) -> impl Iterator<Item = Entry<'g, K, V>> + 'g {
            self.0.iter(guard).map(Entry)
        }

        /// Inserts `value()` under `key` unless an entry holds the key already (which is
        /// then kept, and `value`'s result, if it ran, dropped).
        pub(crate) fn insert_if_absent(&self, key: K, value: impl FnOnce() -> V, guard: &Guard) {
            // The skiplist hands back a counted entry: released here, at once.
            self.0.get_or_insert_with(key, value, guard).release(guard);
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
            self.0.key()
        }

        #[inline]
        pub(crate) fn value(&self) -> &V {
            self.0.value()
        }

        /// Unlinks this entry; `true` if this call did it.
        pub(crate) fn remove(&self) -> bool {
            self.0.remove()
        }

        /// The next entry in key order.
        pub(crate) fn next(&self) -> Option<Entry<'g, K, V>> {
            self.0.next().map(Entry)
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
    pub(crate) struct ExpiryIndex<K, V> {
        map: Mutex<BTreeMap<K, Arc<(K, V)>>>,
        // A plain std mutex: bookkeeping outside the model, never contended within a step.
        unlinked: std::sync::Mutex<Vec<Arc<(K, V)>>>,
    }

    pub(crate) struct Entry<'g, K, V> {
        index: &'g ExpiryIndex<K, V>,
        item: Arc<(K, V)>,
        _guard: PhantomData<&'g Guard>,
    }

    impl<K: Ord + Clone, V> ExpiryIndex<K, V> {
        pub(crate) fn new() -> Self {
            ExpiryIndex {
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

        #[cfg(feature = "test-hooks")] // the invariant checks
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

        #[cfg(feature = "test-hooks")] // the invariant checks
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

        pub(crate) fn insert_if_absent(&self, key: K, value: impl FnOnce() -> V, _guard: &Guard) {
            sync::lock(&self.map)
                .entry(key.clone())
                .or_insert_with(|| Arc::new((key, value())));
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

pub(crate) use imp::{Entry, ExpiryIndex};
