//! The skiplist token index (the default): a crossbeam-skiplist `base::SkipList` ordered by
//! the keyed hash of the token, held inline in the key, then by the token.

use super::key::{is_after, same_token, After, Key, Keyed};
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

/// An entry of the skiplist token index, bound to the guard it was found under.
pub(crate) type SkipEntry<'g, N> = crossbeam_skiplist::base::Entry<'g, 'g, Linked<N>, ()>;

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
    ) -> Option<SkipEntry<'g, N>> {
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
        self.locate(node, guard).is_some_and(|e| e.remove())
    }

    /// The entry that links `node`, if it is linked: what [`unlink_at`](Self::unlink_at)
    /// removes without looking the node up again.
    #[inline]
    pub(crate) fn locate<'g>(&'g self, node: &N, guard: &'g Guard) -> Option<SkipEntry<'g, N>> {
        self.find(node.key_hash(), guard, |n| std::ptr::eq(n, node))
    }

    /// [`unlink`](Self::unlink) of the node [`locate`](Self::locate) found at `e` earlier
    /// under the same guard, without looking it up again. A node is linked once and never
    /// again once unlinked (a token's next node is a new node), so `e` is the only entry that
    /// ever holds it: removing `e` is unlinking the node, and `false` if it was removed
    /// meanwhile, as `unlink` would find no entry then. (crossbeam's `remove` still descends
    /// once more, to unlink the marked entry at every level.)
    pub(crate) fn unlink_at(&self, e: SkipEntry<'_, N>) -> bool {
        e.remove()
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
