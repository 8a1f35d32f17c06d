//! Keeping a node's expiry entry at its `scheduled` deadline: a commit's lowering step, the
//! filing of an entry, and the removal of the entry a shortening commit left behind.

use super::state::Shard;
use crate::raw::node::Node;
use crate::seeded_bugs::seeded_bug;
use crate::sync::{fence, Guard, Ordering};
use std::sync::Arc;

impl Shard {
    /// Commit's lowering step: if `deadline` is earlier than `scheduled`, move `scheduled`
    /// down to it (CAS-min), then file an entry there. The order matters for I2: filing first
    /// would let cleanup pop the new entry, see `scheduled` differ and drop it as stale.
    pub(super) fn lower(&self, node: &Arc<Node>, deadline: u64, guard: &Guard) {
        let mut s = if seeded_bug!(HandshakePlainLoads) {
            node.scheduled.load(Ordering::Acquire) // BUG (loom only): a load, not an RMW.
        } else {
            node.scheduled.fetch_add(0, Ordering::AcqRel)
        };
        while deadline < s {
            if seeded_bug!(FileBeforeLower) {
                self.file(deadline, node, guard); // BUG (loom only): file, then lower.
            }
            match node
                .scheduled
                .compare_exchange(s, deadline, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // BUG (loom only): LowerWithoutFiling files nothing; FileBeforeLower did above.
                    let filed = seeded_bug!(FileBeforeLower) || seeded_bug!(LowerWithoutFiling);
                    if !filed {
                        // I2: `scheduled` lowered first, then the entry filed there.
                        self.file(deadline, node, guard);
                    }
                    self.drop_stale(s, node, guard);
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// Files the entry of a fresh node that [`Shard::commit_new`] linked at `deadline` and
    /// left unfiled: what its link would have filed, later (I2: still after the link; a
    /// delete or shortening commit in between leaves it an orphan or stale: I5).
    pub(crate) fn file_fresh(&self, deadline: u64, node: &Arc<Node>, guard: &Guard) {
        self.file(deadline, node, guard);
    }

    /// Files an expiry entry for `node` at `deadline`, which the caller has just made
    /// `scheduled` (or, for a fresh node, its first). An entry already under that key is
    /// reused; the fence pairs with [`drop_stale`](Self::drop_stale)'s: either this filing
    /// sees that entry's removal (and inserts a new one), or the remover sees `scheduled`
    /// back at its key and files again.
    pub(super) fn file(&self, deadline: u64, node: &Arc<Node>, guard: &Guard) {
        fence(Ordering::SeqCst);
        self.expiry
            .insert_if_absent((deadline, node.id()), || node.clone(), guard);
        self.note_filed(deadline);
    }

    /// After a shortening commit moved `scheduled` from `old` down: removes the entry at
    /// `old`, stale now, so a session whose every commit shortens it leaves no trail of
    /// entries (I5 for every traffic pattern). Best effort: a racing shortening commit can
    /// still leave one orphan, dropped when cleanup reaches it.
    ///
    /// The hazard: meanwhile `scheduled` may have come back to `old` (a later lowering
    /// rescheduled by cleanup) and its filing may have reused the very entry removed here,
    /// leaving the node with no entry at `scheduled` (I2). So after the removal, a fence
    /// (paired with [`file`](Self::file)'s) and an RMW read of `scheduled`: back at `old`,
    /// file again.
    fn drop_stale(&self, old: u64, node: &Arc<Node>, guard: &Guard) {
        self.expiry.remove(&(old, node.id()), guard);
        fence(Ordering::SeqCst);
        // BUG (loom only): StaleNoRefile trusts that nobody filed at `old` meanwhile.
        if node.scheduled.fetch_add(0, Ordering::AcqRel) == old && !seeded_bug!(StaleNoRefile) {
            self.file(old, node, guard); // I2: back at `old`, so an entry must stand there.
        }
    }
}
