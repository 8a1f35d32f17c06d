//! The raw layer: the shards, the two indexes and the protocol that keeps them consistent.
//! Callers pass a pinned guard and `now`; the public layer (`store.rs`) validates input, pins
//! and reads the clock.
//!
//! # Layout
//! Each shard (chosen by the top bits of a keyed ahash of the token) holds:
//! - `primary`: [`Key`] (hash, token) -> [`Node`]. A node, once linked, is never replaced.
//! - `expiry`: `(deadline, hash, node id)` -> `()`. One entry per session at or before its
//!   deadline ("lazy" expiry index); cleanup pops the front while `deadline <= now`.
//!
//! A node holds `id` (unique per shard), `version` (a [`Slot`]: pointer to the current
//! [`Version`] or the tombstone) and `scheduled` (the deadline its expiry entry is filed at).
//!
//! # Invariants (see `../shared/DESIGN.md`; `loom-tests/` checks each)
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
//! - **I5** Stale entries (left by shortening, or orphaned by a fresh commit racing a delete)
//!   are dropped when cleanup reaches them; the id check makes them harmless.
//!
//! # The commit/cleanup handshake
//! A commit writes the version and then reads `scheduled`; a cleanup reschedule writes
//! `scheduled` and then reads the version. Each of those reads is a read-modify-write
//! (`fetch_add(0)` on `scheduled`, a self-CAS on the slot) with acquire-release ordering, so
//! it reads the newest value in that location's modification order and synchronizes with the
//! write before it: whichever side's RMW on `scheduled` comes second sees the other's write.
//! (DESIGN.md proposes `SeqCst` fences; RMWs give the same guarantee without relying on how a
//! checker models fences, and cost one uncontended RMW on a line the CAS already owns.)

use crate::index::{Entry, Index};
use crate::slot::Slot;
use crate::sync::{AtomicU64, Guard, Ordering};
use bytes::Bytes;
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;

/// A token and its keyed hash: the primary index's key, ordered by (hash, token).
#[derive(Clone)]
pub(crate) struct Key {
    hash: u64,
    token: Box<str>,
}

/// What a key is compared as; lets look-ups borrow the caller's `&str` (no allocation).
pub(crate) trait KeyView {
    fn hash(&self) -> u64;
    fn token(&self) -> &str;
}

impl KeyView for Key {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn token(&self) -> &str {
        &self.token
    }
}

/// A borrowed key for look-ups.
pub(crate) struct Probe<'a> {
    pub(crate) hash: u64,
    pub(crate) token: &'a str,
}

impl KeyView for Probe<'_> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn token(&self) -> &str {
        self.token
    }
}

#[inline]
fn cmp_views(a: &dyn KeyView, b: &dyn KeyView) -> CmpOrdering {
    // Comparisons almost always end on the hash; tokens are compared only on a hash tie.
    a.hash()
        .cmp(&b.hash())
        .then_with(|| a.token().as_bytes().cmp(b.token().as_bytes()))
}

impl<'a> Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        cmp_views(self, other) == CmpOrdering::Equal
    }
}
impl Eq for dyn KeyView + '_ {}
impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        cmp_views(self, other)
    }
}
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        cmp_views(self, other) == CmpOrdering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        cmp_views(self, other)
    }
}

/// One committed value of a session.
pub(crate) struct Version {
    pub(crate) data: Bytes,
    /// Nanoseconds since the Unix epoch.
    pub(crate) deadline: u64,
    #[cfg(memstore_loom)]
    _track: loom::alloc::Track<()>,
}

impl Version {
    pub(crate) fn boxed(data: Bytes, deadline: u64) -> Box<Version> {
        Box::new(Version {
            data,
            deadline,
            #[cfg(memstore_loom)]
            _track: loom::alloc::Track::new(()),
        })
    }
}

/// A session's node in the primary index.
pub(crate) struct Node {
    id: u64,
    version: Slot<Version>,
    scheduled: AtomicU64,
}

/// An expiry index key: (deadline, token hash, node id).
pub(crate) type ExpKey = (u64, u64, u64);

/// One shard: both indexes and the node id counter.
pub(crate) struct Shard {
    primary: Index<Key, Node>,
    expiry: Index<ExpKey, ()>,
    next_id: AtomicU64,
}

/// What one cleanup pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Sessions whose deadline had passed, tombstoned and unlinked.
    pub(crate) reclaimed: u64,
    /// Entries whose session's deadline had moved later: refiled.
    pub(crate) rescheduled: u64,
    /// Entries left by shortening or by races: dropped.
    pub(crate) stale: u64,
}

impl Swept {
    pub(crate) fn add(&mut self, o: Swept) {
        self.reclaimed += o.reclaimed;
        self.rescheduled += o.rescheduled;
        self.stale += o.stale;
    }
}

impl Shard {
    pub(crate) fn new() -> Self {
        Shard {
            primary: Index::new(),
            expiry: Index::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Sessions held (expired ones not yet reclaimed included).
    pub(crate) fn len(&self) -> usize {
        self.primary.len()
    }

    /// Entries in the expiry index (live sessions plus stale entries).
    pub(crate) fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// The live version of `probe`, if any: I1.
    #[inline]
    pub(crate) fn find<'g>(
        &'g self,
        probe: &Probe<'_>,
        now: u64,
        guard: &'g Guard,
    ) -> Option<&'g Version> {
        let e = self.primary.get(probe as &dyn KeyView, guard)?;
        let v = e.value().version.load(guard).get()?;
        (v.deadline > now).then_some(v)
    }

    /// Inserts or overwrites `probe`'s session. `deadline` must be in the future.
    pub(crate) fn commit(&self, probe: &Probe<'_>, data: Bytes, deadline: u64, guard: &Guard) {
        let mut new = Some(Version::boxed(data, deadline));
        loop {
            if let Some(e) = self.primary.get(probe as &dyn KeyView, guard) {
                match self.overwrite(&e, probe.hash, new.take().expect("version"), guard) {
                    Ok(()) => return,
                    Err(back) => new = Some(back),
                }
                continue;
            }
            // Fresh: link a new node with insert-if-absent. The closure may run and lose a
            // race, dropping its node, so the node gets a clone of the data (cheap: `Bytes`).
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let v = new.as_ref().expect("version");
            let (data, dl) = (v.data.clone(), v.deadline);
            let e = self.primary.get_or_insert_with(
                Key {
                    hash: probe.hash,
                    token: probe.token.into(),
                },
                || Node {
                    id,
                    version: Slot::new(*Version::boxed(data, dl)),
                    scheduled: AtomicU64::new(dl),
                },
                guard,
            );
            if e.value().id == id {
                // Ours is linked. Its entry comes after the link (I2); a delete that slips in
                // between leaves this entry an orphan, dropped by cleanup (I5).
                self.file(dl, probe.hash, id, guard);
                return;
            }
            // Another thread linked the key first: overwrite its node instead.
            match self.overwrite(&e, probe.hash, new.take().expect("version"), guard) {
                Ok(()) => return,
                Err(back) => new = Some(back),
            }
        }
    }

    /// Swaps the node's version for `new`; `Err(new)` if the node is a tombstone (after
    /// helping to unlink it): the caller starts again and links a fresh node.
    fn overwrite(
        &self,
        e: &Entry<'_, Key, Node>,
        hash: u64,
        mut new: Box<Version>,
        guard: &Guard,
    ) -> Result<(), Box<Version>> {
        let node = e.value();
        let deadline = new.deadline;
        let mut cur = node.version.load(guard);
        loop {
            if cur.get().is_none() {
                e.remove();
                return Err(new);
            }
            match node.version.replace(cur, Some(new), guard) {
                Ok(()) => break,
                Err((back, actual)) => {
                    new = back.expect("version given back");
                    cur = actual;
                }
            }
        }
        // Handshake, commit side: the version is written; read `scheduled` by RMW.
        self.lower(node, hash, deadline, guard);
        Ok(())
    }

    /// Commit's lowering step: if `deadline` is earlier than `scheduled`, move `scheduled`
    /// down to it (CAS-min), then file an entry there. The order matters for I2: filing first
    /// would let cleanup pop the new entry, see `scheduled` differ and drop it as stale.
    fn lower(&self, node: &Node, hash: u64, deadline: u64, guard: &Guard) {
        let mut s = node.scheduled.fetch_add(0, Ordering::AcqRel);
        while deadline < s {
            match node
                .scheduled
                .compare_exchange(s, deadline, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    #[cfg(not(memstore_loom_bug = "lower_without_filing"))]
                    self.file(deadline, hash, node.id, guard);
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }

    fn file(&self, deadline: u64, hash: u64, id: u64, guard: &Guard) {
        drop(
            self.expiry
                .get_or_insert_with((deadline, hash, id), || (), guard),
        );
    }

    /// Deletes `probe`'s session; `true` if this call removed a live or expired version.
    pub(crate) fn delete(&self, probe: &Probe<'_>, guard: &Guard) -> bool {
        let Some(e) = self.primary.get(probe as &dyn KeyView, guard) else {
            return false;
        };
        let node = e.value();
        let mut cur = node.version.load(guard);
        loop {
            if cur.get().is_none() {
                // Another delete or cleanup owns the removal; help unlink.
                e.remove();
                return false;
            }
            // The CAS winner owns the removal (never trust the index's `remove` result).
            match node.version.replace(cur, None, guard) {
                Ok(()) => break,
                Err((_, actual)) => cur = actual,
            }
        }
        e.remove();
        let s = node.scheduled.load(Ordering::Acquire);
        self.expiry.remove(&(s, probe.hash, node.id), guard);
        true
    }

    /// The node with this hash and id, if it is still linked.
    fn node_by_id<'g>(
        &'g self,
        hash: u64,
        id: u64,
        guard: &'g Guard,
    ) -> Option<Entry<'g, Key, Node>> {
        let probe = Probe { hash, token: "" };
        let mut e = self.primary.lower_bound(&probe as &dyn KeyView, guard)?;
        loop {
            if e.key().hash != hash {
                return None;
            }
            if e.value().id == id {
                return Some(e);
            }
            e = e.next()?;
        }
    }

    /// One cleanup pass over this shard: pops every entry with `deadline <= now` and settles
    /// its session (see the module docs).
    pub(crate) fn sweep(&self, now: u64, guard: &Guard) -> Swept {
        let mut swept = Swept::default();
        while let Some(front) = self.expiry.front(guard) {
            let (d, hash, id) = *front.key();
            if d > now {
                break;
            }
            // Whoever unlinks the entry (a CAS on its tower) settles it.
            if !front.remove() {
                continue;
            }
            drop(front);
            swept.add(self.settle(d, hash, id, now, guard));
        }
        swept
    }

    /// Settles a popped entry `(d, hash, id)`.
    fn settle(&self, d: u64, hash: u64, id: u64, now: u64, guard: &Guard) -> Swept {
        let stale = Swept {
            stale: 1,
            ..Swept::default()
        };
        let Some(e) = self.node_by_id(hash, id, guard) else {
            return stale;
        };
        let node = e.value();
        if node.scheduled.load(Ordering::Acquire) != d {
            return stale; // `scheduled` moved: another entry stands for this node.
        }
        let mut cur = node.version.load(guard);
        loop {
            let Some(v) = cur.get() else {
                e.remove(); // tombstoned by a delete: help unlink.
                return stale;
            };
            if v.deadline <= now {
                // I3: tombstone only the version examined.
                match node.version.replace(cur, None, guard) {
                    Ok(()) => {
                        e.remove();
                        return Swept {
                            reclaimed: 1,
                            ..Swept::default()
                        };
                    }
                    Err((_, actual)) => {
                        cur = actual;
                        continue;
                    }
                }
            }
            // Extended: move `scheduled` from d to the version's deadline, then file there.
            let later = v.deadline;
            if node
                .scheduled
                .compare_exchange(d, later, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return stale; // a shortening commit lowered it and filed its own entry.
            }
            self.file(later, hash, id, guard);
            // Handshake, cleanup side: re-read the version by RMW. A commit that swapped it
            // after we read it may have seen the old `scheduled` and filed nothing.
            let latest = node.version.read_latest(cur, guard);
            if !latest.same(cur) {
                if let Some(v2) = latest.get() {
                    self.lower(node, hash, v2.deadline, guard);
                }
            }
            return Swept {
                rescheduled: 1,
                ..Swept::default()
            };
        }
    }

    /// Calls `f` with each live session of this shard.
    pub(crate) fn for_each_live(&self, now: u64, guard: &Guard, mut f: impl FnMut(&str, &Version)) {
        for e in self.primary.iter(guard) {
            if let Some(v) = e.value().version.load(guard).get() {
                if v.deadline > now {
                    f(e.key().token(), v);
                }
            }
        }
    }

    /// Checks I2 and I5's bound on this shard; meaningful only when no operation is in
    /// flight. Returns the number of stale expiry entries.
    pub(crate) fn check_quiescent(&self, guard: &Guard) -> Result<usize, String> {
        let mut linked = 0usize;
        for e in self.primary.iter(guard) {
            let node = e.value();
            let Some(v) = node.version.load(guard).get() else {
                return Err(format!("node {} is a tombstone but still linked", node.id));
            };
            let s = node.scheduled.load(Ordering::Acquire);
            if s > v.deadline {
                return Err(format!(
                    "node {}: scheduled {s} is after its deadline {}",
                    node.id, v.deadline
                ));
            }
            if self
                .expiry
                .get(&(s, e.key().hash, node.id), guard)
                .is_none()
            {
                return Err(format!(
                    "node {}: no expiry entry at scheduled {s}",
                    node.id
                ));
            }
            linked += 1;
        }
        Ok(self.expiry.iter(guard).count().saturating_sub(linked))
    }
}
