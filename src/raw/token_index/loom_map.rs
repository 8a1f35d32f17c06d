//! The token index under `cfg(memstore_loom)`: one linearizable stand-in (a loom
//! `Mutex<BTreeMap>`) for either implementation, with the same interface.

use super::key::{is_after, After, Key, Keyed};
use super::kind::TokenIndex;
use crate::seeded_bugs::seeded_bug;
use crate::sync::{self, Guard, Mutex};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// Where the stand-in found a node: the node itself, if it was linked.
pub(crate) struct Located<'g, N>(Option<Arc<N>>, PhantomData<&'g ()>);

impl<N> Located<'_, N> {
    /// No place known: [`Tokens::unlink_located`] looks the node up.
    pub(crate) fn unknown() -> Self {
        Located(None, PhantomData)
    }
}

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

    /// The node linked under `node`'s token, if it is `node`: the stand-in's place of it.
    pub(crate) fn locate<'g>(&'g self, node: &Arc<N>, _guard: &'g Guard) -> Located<'g, N> {
        let key = (node.key_hash(), node.key_token().to_vec());
        let held = sync::lock(&self.map).get(&key).cloned();
        Located(held.filter(|n| Arc::ptr_eq(n, node)), PhantomData)
    }

    /// Removes the located node if it is still linked (as crossbeam's `Entry::remove`
    /// removes that entry, or nothing once it is removed); a node not linked when located
    /// is looked up again.
    pub(crate) fn unlink_located(&self, node: &Arc<N>, at: Located<'_, N>, guard: &Guard) -> bool {
        if at.0.is_some() && seeded_bug!(UnlinkByToken) {
            // BUG (loom only): removes whatever node holds the token now.
            let key = (node.key_hash(), node.key_token().to_vec());
            let removed = sync::lock(&self.map).remove(&key);
            let ours = removed.as_ref().is_some_and(|n| Arc::ptr_eq(n, node));
            self.unlinked.lock().unwrap().extend(removed);
            return ours;
        }
        self.unlink(node, guard)
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
