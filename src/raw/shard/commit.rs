//! The writes: insert-or-update (`commit`), insert-if-absent (`commit_new`), replace-if-live
//! and touch (`replace_live`), `delete` and `clear`, over one insert-or-update skeleton
//! ([`Shard::upsert`]) and the linking of a fresh node.

use super::state::{size, Shard};
use super::update::{Step, Updated};
use crate::raw::node::Node;
use crate::raw::slot::Slot;
use crate::raw::token_index::Key;
use crate::raw::version::{Owned, Version};
use crate::seeded_bugs::seeded_bug;
use crate::sync::{AtomicU64, Guard, Ordering};
use bytes::Bytes;
use smallvec::SmallVec;
use std::sync::Arc;

/// Fresh nodes linked but not yet filed in their shard's expiry index: (shard index,
/// deadline, node). A snapshot load files a window's entries together, in each shard's
/// deadline order (`Store::file_unfiled`).
pub(crate) type Unfiled = Vec<(usize, u64, Arc<Node>)>;

impl Shard {
    /// Links a fresh node for `key` holding `v` (insert-if-absent), files its entry after
    /// the link (I2; a delete that slips in between leaves the entry an orphan, dropped by
    /// cleanup: I5), or leaves it to `unfiled` (a load's: filed later, still after the
    /// link), then publishes its hint (H2). `Err(v, node)` if a node holds the token
    /// already: `v` taken back out of our node, which was built but never published, and
    /// the node that holds the token (published as a hint if live; `None`: it went before
    /// it could be read, look again).
    fn link_fresh(
        &self,
        key: Key<'_>,
        v: Owned,
        unfiled: Option<&mut Unfiled>,
        guard: &Guard,
    ) -> Result<(), (Owned, Option<Arc<Node>>)> {
        let (dl, held) = (v.deadline, size(key.token, v.data()));
        let node = Arc::new(Node {
            hash: key.hash,
            version: Slot::new(v),
            scheduled: AtomicU64::new(dl),
            token: SmallVec::from_slice(key.token),
        });
        let held_by = match self.tokens_of(node.hash).insert(&node, guard) {
            Ok(()) => {
                self.account(1, held);
                match unfiled {
                    // I2: file after the link (now, or once the load's window is linked).
                    Some(u) => u.push((self.index, dl, node.clone())),
                    None => self.file(dl, &node, guard),
                }
                if let Some(h) = &self.hints {
                    h.publish(&node, guard);
                    h.grow_if_needed(self.len(), guard);
                }
                return Ok(());
            }
            Err(held_by) => held_by,
        };
        if let (Some(h), Some(n)) = (&self.hints, &held_by) {
            h.publish(n, guard);
        }
        // Our node was never published (the rejected key is dropped), so this is its only
        // handle: take the version back, no copy. (The fallback is unreachable.)
        let v = Arc::try_unwrap(node)
            .ok()
            .and_then(|n| n.version.into_inner())
            .unwrap_or_else(|| Version::new(Bytes::new(), dl));
        Err((v, held_by))
    }

    /// The insert-or-update skeleton of `commit` and `commit_new`: runs `existing` on the
    /// node linked under `key` (a tombstoned node: look again), else links a fresh node
    /// holding `new` (another thread linked one first: `existing` on that one). `existing`
    /// takes the version and gives it back if the node turned out to be a tombstone.
    ///
    /// With a hint table, a token with no live hint goes straight to the insert: its
    /// descent finds the node that holds the token if there is one, so a fresh session
    /// costs one descent of the token index, not a look-up and then an insert.
    fn upsert<R>(
        &self,
        key: Key<'_>,
        new: Owned,
        fresh: R,
        mut unfiled: Option<&mut Unfiled>,
        guard: &Guard,
        mut existing: impl FnMut(&Arc<Node>, Owned) -> Result<R, Owned>,
    ) -> R {
        let mut new = new;
        loop {
            let mut held = Some(new);
            let found = match &self.hints {
                Some(h) => h
                    .get(key, guard)
                    .map(|n| existing(&n, held.take().expect("version"))),
                None => self.with_node(key, guard, |node| {
                    existing(node, held.take().expect("version"))
                }),
            };
            new = match found {
                Some(Ok(r)) => return r,
                Some(Err(back)) => back,
                None => match self.link_fresh(
                    key,
                    held.take().expect("version"),
                    unfiled.as_deref_mut(),
                    guard,
                ) {
                    Ok(()) => return fresh,
                    Err((back, None)) => back,
                    Err((back, Some(node))) => match existing(&node, back) {
                        Ok(r) => return r,
                        Err(back) => back,
                    },
                },
            };
        }
    }

    /// Inserts or overwrites `key`'s session. `deadline` must be in the future.
    pub(crate) fn commit(&self, key: Key<'_>, data: Bytes, deadline: u64, guard: &Guard) {
        self.upsert(
            key,
            Version::new(data, deadline),
            (),
            None,
            guard,
            |node, new| {
                if seeded_bug!(OverwriteRemoveInsert) && self.unlink(node, guard) {
                    return Err(new); // BUG (loom only): unlink the node, then link a new one.
                }
                let (done, spare) = self.update(node, Some(new), guard, |_, spare| {
                    Step::Put(spare.take().expect("version"))
                });
                match done {
                    Updated::Swapped => {
                        // Handshake, commit side: the version is written; read `scheduled` by RMW.
                        self.lower(node, deadline, guard);
                        Ok(())
                    }
                    Updated::Gone | Updated::Stopped((), _) => {
                        Err(spare.expect("version given back"))
                    }
                }
            },
        )
    }

    /// Inserts `key`'s session only if no live session holds the token; `true` if it did.
    /// `deadline` must be after `now`. With `unfiled` (a load), a fresh node's expiry entry
    /// is left to the caller, who files it with [`Shard::file_fresh`].
    ///
    /// Of racing inserters of a fresh token exactly one links its node (the index's
    /// insert-if-absent), and it files the entry after the link (I2), as commit does. On an
    /// existing node a live version wins (`false`, the node untouched); an expired one is
    /// replaced by a CAS from exactly the version examined (I3: a commit or commit_new that
    /// lands first makes the CAS fail and is re-examined), which is an overwrite in every
    /// respect the protocol cares about, so it takes overwrite's lowering step.
    pub(crate) fn commit_new(
        &self,
        key: Key<'_>,
        data: Bytes,
        deadline: u64,
        now: u64,
        unfiled: Option<&mut Unfiled>,
        guard: &Guard,
    ) -> bool {
        self.upsert(
            key,
            Version::new(data, deadline),
            true,
            unfiled,
            guard,
            |node, new| {
                let (done, spare) = self.update(node, Some(new), guard, |v, spare| {
                    if v.deadline > now {
                        Step::Stop(()) // a live session holds the token
                    } else {
                        Step::Put(spare.take().expect("version"))
                    }
                });
                match done {
                    Updated::Swapped => {
                        self.lower(node, deadline, guard);
                        Ok(true)
                    }
                    Updated::Stopped((), _) => Ok(false),
                    Updated::Gone => Err(spare.expect("version given back")),
                }
            },
        )
    }

    /// Replaces `key`'s session only if a live one holds the token (redis's `SET XX`);
    /// `true` if it did. `data: None` keeps the examined version's data (a touch: only the
    /// deadline changes). `deadline` must be after `now`.
    ///
    /// Never links a node, so a session deleted or expired meanwhile stays gone. The CAS is
    /// from the live version examined; on failure it re-examines what won (with `None`, the
    /// winner's data is kept, so a concurrent commit is never undone by a touch). Then
    /// overwrite's lowering step.
    pub(crate) fn replace_live(
        &self,
        key: Key<'_>,
        data: Option<Bytes>,
        deadline: u64,
        now: u64,
        guard: &Guard,
    ) -> bool {
        let mut spare = data.map(|d| Version::new(d, deadline));
        let touch = spare.is_none();
        loop {
            let r = self.with_node(key, guard, |node| {
                let (done, back) = self.update(node, spare.take(), guard, |v, spare| {
                    if v.deadline <= now {
                        Step::Stop(())
                    } else if touch {
                        Step::Put(v.retimed(deadline))
                    } else {
                        Step::Put(spare.take().expect("version"))
                    }
                });
                // A touch's given-back version holds a loser's data: never reused.
                spare = back.filter(|_| !touch);
                match done {
                    Updated::Swapped => {
                        self.lower(node, deadline, guard);
                        Some(true)
                    }
                    Updated::Stopped((), _) => Some(false),
                    // Tombstoned: a fresh node may be linked by now; look again.
                    Updated::Gone => None,
                }
            });
            match r {
                None => return false, // no node
                Some(Some(done)) => return done,
                Some(None) => {}
            }
        }
    }

    /// Deletes `key`'s session; `true` if this call removed a live or expired version (the
    /// CAS winner owns the removal: the index's own `remove` result is never trusted).
    pub(crate) fn delete(&self, key: Key<'_>, guard: &Guard) -> bool {
        self.with_node_hinting(key, false, guard, |node| self.delete_node(node, guard))
            .unwrap_or(false)
    }

    /// Deletes `node`'s session, as [`delete`](Self::delete) does once it has found it.
    fn delete_node(&self, node: &Arc<Node>, guard: &Guard) -> bool {
        let (done, _) = self.update(node, None, guard, |_, _| Step::<()>::Tombstone);
        if !matches!(done, Updated::Swapped) {
            return false;
        }
        self.unlink(node, guard);
        let s = node.scheduled.load(Ordering::Acquire);
        self.expiry.remove(&(s, node.id()), guard);
        true
    }

    /// Deletes every session linked in this shard when the walk reaches it (each as
    /// [`delete`](Self::delete) would, with no copy of its data); the number this call
    /// removed. A session committed during the walk may or may not be deleted.
    pub(crate) fn clear(&self, guard: &Guard) -> usize {
        let mut removed = 0;
        self.walk(None, guard, |_, node| {
            removed += usize::from(self.delete_node(node, guard));
            true
        });
        removed
    }
}
