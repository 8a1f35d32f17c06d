//! The ordered index: a crossbeam-skiplist `base::SkipList`, or under `cfg(memstore_loom)` a
//! linearizable stand-in (a loom `Mutex<BTreeMap>`) with the same small interface.
//!
//! crossbeam-skiplist has no loom support, so loom explores *our* protocol over the stand-in
//! and trusts crossbeam-skiplist for its own linearizability (tested upstream). The interface
//! is what the protocol needs and nothing more:
//! - `get`, `lower_bound`, `front`, `iter`: guard-bound entries, no reference count bumped;
//! - `get_or_insert_with`: insert-if-absent (never replace: crossbeam #1023);
//! - `Entry::remove`: unlink *this* node (a CAS on its tower), never whatever node holds the
//!   key now; its `bool` says whether this call unlinked it;
//! - `remove`: by key, result ignored (crossbeam #1143: two removers can both get `Some`).

#[cfg(not(memstore_loom))]
mod imp {
    use crate::sync::Guard;
    use crossbeam_skiplist::base::{self, RefEntry, SkipList};
    use std::borrow::Borrow;
    use std::ops::Bound;

    pub(crate) struct Index<K, V>(SkipList<K, V>);

    /// An entry, valid while the guard it was found under lives.
    pub(crate) enum Entry<'g, K, V> {
        Guarded(base::Entry<'g, 'g, K, V>),
        Counted(Option<RefEntry<'g, K, V>>, &'g Guard),
    }

    impl<K: Ord + Send + 'static, V: Send + 'static> Index<K, V> {
        pub(crate) fn new() -> Self {
            Index(SkipList::new(crossbeam_epoch::default_collector().clone()))
        }

        #[inline]
        pub(crate) fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            self.0.get(key, guard).map(Entry::Guarded)
        }

        /// The first entry whose key is `>= key`.
        pub(crate) fn lower_bound<'g, Q>(
            &'g self,
            key: &Q,
            guard: &'g Guard,
        ) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            self.0
                .lower_bound(Bound::Included(key), guard)
                .map(Entry::Guarded)
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
    pub(crate) struct Index<K, V> {
        map: Mutex<BTreeMap<K, Arc<(K, V)>>>,
        // A plain std mutex: bookkeeping outside the model, never contended within a step.
        unlinked: std::sync::Mutex<Vec<Arc<(K, V)>>>,
    }

    pub(crate) struct Entry<'g, K, V> {
        index: &'g Index<K, V>,
        item: Arc<(K, V)>,
        _guard: PhantomData<&'g Guard>,
    }

    impl<K: Ord + Clone, V> Index<K, V> {
        pub(crate) fn new() -> Self {
            Index {
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

        pub(crate) fn lower_bound<'g, Q>(
            &'g self,
            key: &Q,
            _guard: &'g Guard,
        ) -> Option<Entry<'g, K, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ?Sized,
        {
            sync::lock(&self.map)
                .range::<Q, _>((Bound::Included(key), Bound::Unbounded))
                .next()
                .map(|(_, i)| self.entry(i))
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

pub(crate) use imp::{Entry, Index};
