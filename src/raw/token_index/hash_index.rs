//! The hash token index (feature `hash-index`): scc's `HashIndex`, keyed by the node itself.

use super::key::{is_after, same_token, After, Key, Keyed};
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
            Err(_) => Err(self.map.peek_with(&key_of(&**node), |k, _| k.0.clone())),
        }
    }

    /// Takes a bucket lock.
    pub(crate) fn unlink(&self, node: &Arc<N>, _guard: &Guard) -> bool {
        match self.map.get_sync(&key_of(&**node)) {
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

/// `node`'s key: what the map is looked up by.
#[inline]
pub(super) fn key_of<N: Keyed>(node: &N) -> Key<'_> {
    Key {
        hash: node.key_hash(),
        token: node.key_token(),
    }
}
