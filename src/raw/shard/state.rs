//! One shard: its two indexes and the protocol that keeps them consistent. Callers pass a
//! pinned guard and `now`; the raw store (`mod.rs`) routes, checks input and bounds, pins
//! and reads the clock.
//!
//! # Layout
//! Each shard (chosen by the top bits of a keyed ahash of the token) holds:
//! - `tokens`: token -> [`Node`], the token index (`token_index.rs`): skiplists split by the
//!   hash bits after the shard's, or one hash index. A node, once linked, is never replaced.
//! - `expiry`: `(deadline, node id)` -> the node (`Arc`, shared with the token index). One
//!   entry per session at or before its deadline ("lazy" expiry index); cleanup pops the
//!   front while `deadline <= now` and reaches the node through the entry, with no look-up.
//!
//! A node holds its token and keyed hash, `version` (a [`Slot`]: pointer to the current
//! [`Version`] or the tombstone) and `scheduled` (the deadline its expiry entry is filed at).
//! A version is its deadline and its data in one allocation (`version.rs`).
//! Its id is its address: an entry holds its node, so the address is not reused meanwhile.
//!
//! Every change to a node's version goes through one compare-and-swap loop,
//! [`Shard::update`]; `commit` and `commit_new` share one insert-or-update skeleton,
//! [`Shard::upsert`].
//!
//! # Invariants (see `DESIGN.md` at the crate root; `loom-tests/` checks each)
//! - **I1** `find` never returns a session whose deadline has passed (it compares the deadline
//!   it read with `now`), and never misses a session live for the whole call: overwrites swap
//!   the version pointer of the linked node, so the node is never absent.
//! - **I2** At quiescence every linked node has an entry at exactly `scheduled`, and
//!   `scheduled <=` its version's deadline. Kept by: fresh nodes file their entry after
//!   linking; shortening commits lower `scheduled` *then* file; cleanup reschedules by a CAS of
//!   `scheduled` from the popped deadline, *then* files, then re-reads the version (handshake).
//! - **I3** Cleanup and eviction only tombstone the version they examined (CAS on the slot;
//!   the epoch guard rules out ABA), so a commit that lands first survives.
//! - **I4** Per token, operations are linearizable at their slot CAS (or the insert that links
//!   a fresh node): last commit wins; a returned delete is not undone by an earlier commit,
//!   since a tombstone is final and a later commit links a new node.
//! - **I5** Stale entries (left by a racing shortening, or orphaned by a fresh commit racing a
//!   delete) are dropped when cleanup reaches them: an entry whose deadline is not its node's
//!   `scheduled` settles as stale, so it is harmless. A shortening commit removes its own
//!   old entry at once (`drop_stale`).
//!
//! # The commit/cleanup handshake
//! A commit writes the version and then reads `scheduled`; a cleanup reschedule writes
//! `scheduled` and then reads the version. Each of those reads is a read-modify-write
//! (`fetch_add(0)` on `scheduled`, a self-CAS on the slot) with acquire-release ordering, so
//! it reads the newest value in that location's modification order and synchronizes with the
//! write before it: whichever side's RMW on `scheduled` comes second sees the other's write.
//! (Two `SeqCst` fences would do too; RMWs give the guarantee without relying on how a
//! checker models fences, and cost one uncontended RMW on a line the CAS already owns.)

use crate::raw::bounds::Usage;
use crate::raw::expiry_index::ExpiryIndex;
use crate::raw::hints::Hints;
use crate::raw::node::Node;
use crate::raw::slot::{Current, Slot};
use crate::raw::token_index::{After, Key, TokenIndex, Tokens};
use crate::raw::version::{Owned, Version};
use crate::seeded_bugs::seeded_bug;
use crate::sync::{fence, AtomicU64, Guard, Ordering, StatI64};
use bytes::Bytes;
use smallvec::SmallVec;
use std::sync::Arc;

/// What [`Shard::update`]'s step does with the version it examined.
pub(super) enum Step<R> {
    /// Swap in this version.
    Put(Owned),
    /// Swap in the tombstone.
    Tombstone,
    /// Leave the node as it is.
    Stop(R),
}

/// What [`Shard::update`] did.
pub(super) enum Updated<'g, R> {
    /// Swapped the version examined out.
    Swapped,
    /// The step stopped, with the version it examined.
    Stopped(R, Current<'g, Version>),
    /// The node holds the tombstone (the call helped unlink it).
    Gone,
}

/// An expiry index key: (deadline, node id).
pub(crate) type ExpKey = (u64, usize);

/// One shard: both indexes and its share of the accounting.
pub(crate) struct Shard {
    /// The token index, split by the hash bits after the shard's into skiplists small enough
    /// to be shallow (a hash index is one table): see [`Shard::new`].
    tokens: Box<[Tokens<Node>]>,
    /// `hash >> sub_shift`, masked, picks the token index of `hash` within this shard.
    sub_shift: u32,
    pub(super) expiry: ExpiryIndex<ExpKey, Arc<Node>>,
    /// Point operations' way to a node without a descent (`hints.rs`); skiplist index only.
    hints: Option<Hints>,
    /// Sessions (linked, not tombstoned) in this shard; statistics only.
    sessions: StatI64,
    /// Bytes (token + data) of the versions in this shard; statistics only.
    bytes: StatI64,
    /// The store-wide counters that bounds are checked against; only for bounded stores.
    usage: Option<std::sync::Arc<Usage>>,
}

fn size(token: &[u8], data: &[u8]) -> isize {
    (token.len() + data.len()) as isize
}

/// Why a look-up found no live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No session holds the token.
    Absent,
    /// The session's deadline has passed (cleanup has not reclaimed it yet).
    Expired,
}

impl Shard {
    /// A shard of a store whose hashes' top `shard_bits` pick the shard. A skiplist token
    /// index is split into `2^sub_bits` skiplists by the next bits: a descent's length is
    /// log2 of the sessions per skiplist, so more, smaller skiplists are shallower, while
    /// the expiry index (which cleanup and eviction visit shard by shard) stays one per shard.
    pub(crate) fn new(
        usage: Option<std::sync::Arc<Usage>>,
        kind: TokenIndex,
        shard_bits: u32,
        sub_bits: u32,
        hints: bool,
    ) -> Self {
        // A hash index is one table; under loom one stand-in map models any split.
        let split = kind == TokenIndex::SkipList && !cfg!(memstore_loom);
        let sub_bits = if split { sub_bits } else { 0 };
        Shard {
            tokens: (0..1usize << sub_bits).map(|_| Tokens::new(kind)).collect(),
            sub_shift: 64 - shard_bits - sub_bits,
            expiry: ExpiryIndex::new(),
            hints: (hints && kind == TokenIndex::SkipList).then(Hints::new),
            sessions: StatI64::new(0),
            bytes: StatI64::new(0),
            usage,
        }
    }

    /// The token index that holds `hash`.
    #[inline]
    pub(super) fn tokens_of(&self, hash: u64) -> &Tokens<Node> {
        &self.tokens[self.sub_index(hash)]
    }

    /// Which of this shard's token indexes holds `hash`.
    #[inline]
    fn sub_index(&self, hash: u64) -> usize {
        (hash.checked_shr(self.sub_shift).unwrap_or(0) as usize) & (self.tokens.len() - 1)
    }

    /// Unlinks `node` from the token index if it is the node linked under its token; `true`
    /// if this call did.
    pub(super) fn unlink(&self, node: &Arc<Node>, guard: &Guard) -> bool {
        self.tokens_of(node.hash).unlink(node, guard)
    }

    /// Calls `f(hash, node)` with each linked node after `after`, in key order, until `f`
    /// returns `false`.
    fn walk(&self, after: After<'_>, guard: &Guard, mut f: impl FnMut(u64, &Arc<Node>) -> bool) {
        let first = after.map_or(0, |a| self.sub_index(a.hash));
        let mut go = true;
        for (i, t) in self.tokens.iter().enumerate().skip(first) {
            let after = if i == first { after } else { None };
            t.walk(after, guard, |h, n| {
                go = f(h, n);
                go
            });
            if !go {
                return;
            }
        }
    }

    /// Bytes (tokens + data) held by this shard.
    pub(crate) fn bytes(&self) -> i64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a change in what this shard holds.
    #[inline]
    fn account(&self, sessions: isize, bytes: isize) {
        if sessions != 0 {
            self.sessions
                .fetch_add(sessions as i64, std::sync::atomic::Ordering::Relaxed);
        }
        if bytes != 0 {
            self.bytes
                .fetch_add(bytes as i64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(u) = &self.usage {
            if sessions != 0 {
                u.sessions.fetch_add(sessions, Ordering::Relaxed);
            }
            if bytes != 0 {
                u.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Links a fresh node for `key` holding `v` (insert-if-absent), files its entry after
    /// the link (I2; a delete that slips in between leaves the entry an orphan, dropped by
    /// cleanup: I5), then publishes its hint (H2). `Err(v, node)` if a node holds the token
    /// already: `v` taken back out of our node, which was built but never published, and
    /// the node that holds the token (published as a hint if live; `None`: it went before
    /// it could be read, look again).
    fn link_fresh(
        &self,
        key: Key<'_>,
        v: Owned,
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
                self.file(dl, &node, guard);
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

    /// Hints in this shard's table to tombstoned nodes (only races leave them: H2).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn dead_hints(&self, guard: &Guard) -> usize {
        self.hints.as_ref().map_or(0, |h| h.dead_hints(guard))
    }

    /// Bytes of this shard's hint table (0 without one).
    pub(crate) fn hint_table_bytes(&self, guard: &Guard) -> usize {
        self.hints.as_ref().map_or(0, |h| h.bytes(guard))
    }

    /// Sessions held (expired ones not yet reclaimed included).
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.sessions.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0)
    }

    /// Entries in the expiry index (live sessions plus stale entries).
    pub(crate) fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// Runs `f` with `key`'s node, if one is linked: lock-free, no count bumped. The node
    /// is borrowed for the call only; versions loaded from it live as long as `guard` (they
    /// are retired to the epoch, and a linked node is only freed once tombstoned). A live
    /// hint (H3) skips the descent; a descent that finds a live node publishes its hint (H2).
    #[inline]
    fn with_node<R>(
        &self,
        key: Key<'_>,
        guard: &Guard,
        f: impl FnOnce(&Arc<Node>) -> R,
    ) -> Option<R> {
        self.with_node_hinting(key, true, guard, f)
    }

    /// [`with_node`](Self::with_node); `publish: false` for a caller about to remove the
    /// session (a delete), which has no use for a hint.
    #[inline]
    fn with_node_hinting<R>(
        &self,
        key: Key<'_>,
        publish: bool,
        guard: &Guard,
        f: impl FnOnce(&Arc<Node>) -> R,
    ) -> Option<R> {
        let Some(hints) = &self.hints else {
            return self.tokens_of(key.hash).with(key, guard, f);
        };
        if let Some(node) = hints.get(key, guard) {
            return Some(f(&node));
        }
        self.tokens_of(key.hash).with(key, guard, |node| {
            if publish {
                hints.publish(node, guard);
            }
            f(node)
        })
    }

    /// The live version of `key`, or why there is none: I1.
    #[inline]
    pub(crate) fn find<'g>(
        &self,
        key: Key<'_>,
        now: impl FnOnce() -> u64,
        guard: &'g Guard,
    ) -> Result<&'g Version, Miss> {
        let cur = self
            .with_node(key, guard, |n| n.version.load(guard))
            .ok_or(Miss::Absent)?;
        let v = cur.get().ok_or(Miss::Absent)?;
        // The clock is read only for a hit, after the search: a miss costs no clock read, and
        // "now" is no earlier than the start of the call either way.
        if v.deadline > now() {
            Ok(v)
        } else {
            Err(Miss::Expired)
        }
    }

    /// The size (token + data) of the version `key` holds, live or expired; `None` if none.
    pub(crate) fn held_size(&self, key: Key<'_>, guard: &Guard) -> Option<usize> {
        let cur = self.with_node(key, guard, |n| n.version.load(guard))?;
        Some(key.token.len() + cur.get()?.data().len())
    }

    /// The protocol's one compare-and-swap loop on a node's version. Loads the version,
    /// asks `step` what to do with it, and swaps from exactly the version examined (I3); when
    /// another thread's swap lands first, examines the winner. `spare` is the version the
    /// caller brings: a failed swap gives it back, and `step` finds it there again (no
    /// allocation per retry); the loop hands it back at the end. A tombstone is final: the
    /// loop helps unlink the node and returns [`Updated::Gone`]. Accounts each swap.
    pub(super) fn update<'g, R>(
        &self,
        node: &Arc<Node>,
        mut spare: Option<Owned>,
        guard: &'g Guard,
        mut step: impl FnMut(&'g Version, &mut Option<Owned>) -> Step<R>,
    ) -> (Updated<'g, R>, Option<Owned>) {
        let mut cur = node.version.load(guard);
        loop {
            let Some(old) = cur.get() else {
                // Another delete or cleanup owns the removal; help unlink.
                self.unlink(node, guard);
                return (Updated::Gone, spare);
            };
            let swapped = match step(old, &mut spare) {
                Step::Stop(r) => return (Updated::Stopped(r, cur), spare),
                Step::Put(new) => {
                    let delta = new.data().len() as isize - old.data().len() as isize;
                    match node.version.compare_exchange(cur, new, guard) {
                        Ok(()) => {
                            self.account(0, delta);
                            Ok(())
                        }
                        Err((back, actual)) => {
                            spare = Some(back);
                            Err(actual)
                        }
                    }
                }
                Step::Tombstone => {
                    let examined = if seeded_bug!(TombstoneUnexamined) {
                        node.version.load(guard) // BUG (loom only): whatever the slot holds now.
                    } else {
                        cur
                    };
                    let done = node.version.compare_tombstone(examined, guard);
                    if done.is_ok() {
                        // The tombstone's owner clears the node's hints (H2).
                        if let Some(h) = &self.hints {
                            h.clear(node, guard);
                        }
                        self.account(-1, -size(&node.token, old.data()));
                    }
                    done
                }
            };
            match swapped {
                Ok(()) => return (Updated::Swapped, spare),
                Err(actual) => cur = actual,
            }
        }
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
                None => match self.link_fresh(key, held.take().expect("version"), guard) {
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
        self.upsert(key, Version::new(data, deadline), (), guard, |node, new| {
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
                Updated::Gone | Updated::Stopped((), _) => Err(spare.expect("version given back")),
            }
        })
    }

    /// Inserts `key`'s session only if no live session holds the token; `true` if it did.
    /// `deadline` must be after `now`.
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
        guard: &Guard,
    ) -> bool {
        self.upsert(
            key,
            Version::new(data, deadline),
            true,
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
                        self.file(deadline, node, guard);
                    }
                    self.drop_stale(s, node, guard);
                    return;
                }
                Err(actual) => s = actual,
            }
        }
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
            self.file(old, node, guard);
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

    /// Calls `f(hash, token, version)` with each live session of this shard after `after`, in
    /// the token index's key order, until `f` returns `false`.
    pub(crate) fn walk_live(
        &self,
        after: After<'_>,
        now: u64,
        guard: &Guard,
        mut f: impl FnMut(u64, &str, &Version) -> bool,
    ) {
        self.walk(after, guard, |h, node| {
            match node.version.load(guard).get() {
                Some(v) if v.deadline > now => f(h, node.token(), v),
                _ => true,
            }
        });
    }

    /// How many sessions a walk should take per pin: `batch` where the index resumes in key
    /// order cheaply (the skiplist), the whole shard where resuming means collecting it again.
    pub(crate) fn walk_batch(&self, batch: usize) -> usize {
        if self.tokens[0].resumes() {
            batch
        } else {
            usize::MAX
        }
    }

    /// Calls `f` with each live session of this shard.
    pub(crate) fn for_each_live(&self, now: u64, guard: &Guard, mut f: impl FnMut(&str, &Version)) {
        self.walk_live(None, now, guard, |_, token, v| {
            f(token, v);
            true
        });
    }

    /// Checks I2 and I5's bound on this shard; meaningful only when no operation is in
    /// flight. Returns the number of stale expiry entries.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn check_quiescent(&self, guard: &Guard) -> Result<usize, String> {
        let mut linked = 0usize;
        let mut bad = None;
        self.walk(None, guard, |_, node| {
            linked += 1;
            let s = node.scheduled.load(Ordering::Acquire);
            bad = match node.version.load(guard).get() {
                None => Some(format!(
                    "node {:#x} is a tombstone but still linked",
                    node.id()
                )),
                Some(v) if s > v.deadline => Some(format!(
                    "node {:#x}: scheduled {s} is after its deadline {}",
                    node.id(),
                    v.deadline
                )),
                Some(_) if self.expiry.get(&(s, node.id()), guard).is_none() => Some(format!(
                    "node {:#x}: no expiry entry at scheduled {s}",
                    node.id()
                )),
                Some(_) => None,
            };
            bad.is_none()
        });
        if let Some(bad) = bad {
            return Err(bad);
        }
        if linked != self.len() {
            return Err(format!(
                "{linked} nodes linked, but the shard counts {} sessions",
                self.len()
            ));
        }
        Ok(self.expiry.iter(guard).count().saturating_sub(linked))
    }
}
