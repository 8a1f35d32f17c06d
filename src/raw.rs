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
use crate::slot::{Current, Slot};
use crate::sync::{seeded_bug, AtomicIsize, AtomicU64, Guard, Ordering, StatI64};
use bytes::Bytes;
use crossbeam_utils::CachePadded;
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use subtle::ConstantTimeEq;

/// A token and its keyed hash: the primary index's key, ordered by (hash, token).
///
/// Look-ups search by the hash alone (`Borrow<u64>`): the search compares plain `u64`s, no
/// token bytes and no dynamic dispatch, and lands on the first node with that hash; the
/// token is then checked with a constant-time comparison, walking on through the (in
/// practice nonexistent) other nodes of the same 64-bit keyed hash. The projection to the
/// hash is monotone in the key order, so searching by it finds exactly the nodes with that
/// hash; `Borrow`'s equality contract is only loosened for such collisions, which the walk
/// handles. Inserts compare whole keys.
#[derive(Clone)]
pub(crate) struct Key {
    hash: u64,
    token: Box<str>,
}

impl Key {
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Borrow<u64> for Key {
    fn borrow(&self) -> &u64 {
        &self.hash
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.token == other.token
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
        self.hash
            .cmp(&other.hash)
            .then_with(|| self.token.as_bytes().cmp(other.token.as_bytes()))
    }
}

/// A borrowed key for look-ups: the caller's `&str` and its keyed hash (no allocation).
pub(crate) struct Probe<'a> {
    pub(crate) hash: u64,
    pub(crate) token: &'a str,
}

/// Token equality in time that depends only on the lengths: a look-up never reveals how
/// much of a stored token a guess matched.
#[inline]
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
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

/// One shard: both indexes, the node id counter and its share of the accounting.
pub(crate) struct Shard {
    primary: Index<Key, Node>,
    expiry: Index<ExpKey, ()>,
    next_id: AtomicU64,
    /// Bytes (token + data) of the versions in this shard; statistics only.
    bytes: StatI64,
    /// The store-wide counters that bounds are checked against; only for bounded stores.
    usage: Option<std::sync::Arc<Usage>>,
}

/// Store-wide sessions and bytes, kept only when the store has a bound. Updated at the
/// points where a version enters or leaves a node (a link, a swap, a tombstone CAS), each of
/// which has exactly one winner, so the counts are exact at quiescence.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub(crate) sessions: CachePadded<AtomicIsize>,
    pub(crate) bytes: CachePadded<AtomicIsize>,
}

fn size(token: &str, data: &[u8]) -> isize {
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
    pub(crate) fn new(usage: Option<std::sync::Arc<Usage>>) -> Self {
        Shard {
            primary: Index::new(),
            expiry: Index::new(),
            next_id: AtomicU64::new(0),
            bytes: StatI64::new(0),
            usage,
        }
    }

    /// Bytes (tokens + data) held by this shard.
    pub(crate) fn bytes(&self) -> i64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a change in what this shard holds.
    #[inline]
    fn account(&self, sessions: isize, bytes: isize) {
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

    /// Links a fresh node for `probe` holding a copy of `v` (insert-if-absent), and files its
    /// entry after the link (I2); a delete that slips in between leaves the entry an orphan,
    /// dropped by cleanup (I5). Returns the entry under the key and whether it is ours. The
    /// closure may run and lose a race, dropping its node, so the node gets a clone of the
    /// data (cheap: `Bytes`) and the caller keeps `v`.
    fn link_fresh<'g>(
        &'g self,
        probe: &Probe<'_>,
        v: &Version,
        guard: &'g Guard,
    ) -> (Entry<'g, Key, Node>, bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
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
        let ours = e.value().id == id;
        if ours {
            self.account(1, size(probe.token, &v.data));
            self.file(dl, probe.hash, id, guard);
        }
        (e, ours)
    }

    /// Sessions held (expired ones not yet reclaimed included).
    pub(crate) fn len(&self) -> usize {
        self.primary.len()
    }

    /// Entries in the expiry index (live sessions plus stale entries).
    pub(crate) fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// `probe`'s node, if one is linked: a search by hash, then the token check.
    #[inline]
    fn entry<'g>(&'g self, probe: &Probe<'_>, guard: &'g Guard) -> Option<Entry<'g, Key, Node>> {
        let mut e = self.primary.lower_bound(&probe.hash, guard)?;
        loop {
            if e.key().hash != probe.hash {
                return None;
            }
            if same_token(&e.key().token, probe.token) {
                return Some(e);
            }
            e = e.next()?;
        }
    }

    /// The live version of `probe`, or why there is none: I1.
    #[inline]
    pub(crate) fn find<'g>(
        &'g self,
        probe: &Probe<'_>,
        now: impl FnOnce() -> u64,
        guard: &'g Guard,
    ) -> Result<&'g Version, Miss> {
        let e = self.entry(probe, guard).ok_or(Miss::Absent)?;
        let v = e.value().version.load(guard).get().ok_or(Miss::Absent)?;
        // The clock is read only for a hit, after the search: a miss costs no clock read, and
        // "now" is no earlier than the start of the call either way.
        if v.deadline > now() {
            Ok(v)
        } else {
            Err(Miss::Expired)
        }
    }

    /// The size (token + data) of the version `probe` holds, live or expired; `None` if none.
    pub(crate) fn held_size(&self, probe: &Probe<'_>, guard: &Guard) -> Option<usize> {
        let e = self.entry(probe, guard)?;
        let v = e.value().version.load(guard).get()?;
        Some(probe.token.len() + v.data.len())
    }

    /// Inserts or overwrites `probe`'s session. `deadline` must be in the future.
    pub(crate) fn commit(&self, probe: &Probe<'_>, data: Bytes, deadline: u64, guard: &Guard) {
        let mut new = Some(Version::boxed(data, deadline));
        loop {
            if let Some(e) = self.entry(probe, guard) {
                if seeded_bug!(OverwriteRemoveInsert) && e.remove() {
                    continue; // BUG (loom only): unlink the node, then link a new one.
                }
                match self.overwrite(&e, probe.hash, new.take().expect("version"), guard) {
                    Ok(()) => return,
                    Err(back) => new = Some(back),
                }
                continue;
            }
            let (e, ours) = self.link_fresh(probe, new.as_ref().expect("version"), guard);
            if ours {
                return;
            }
            // Another thread linked the key first: overwrite its node instead.
            match self.overwrite(&e, probe.hash, new.take().expect("version"), guard) {
                Ok(()) => return,
                Err(back) => new = Some(back),
            }
        }
    }

    /// Inserts `probe`'s session only if no live session holds the token; `true` if it did.
    /// `deadline` must be after `now`.
    ///
    /// Always `get_or_insert_with`: of racing inserters of a fresh token exactly one links its
    /// node (the skiplist's insert-if-absent), and it files the entry after the link (I2), as
    /// commit does. On an existing node, [`take_over`](Self::take_over) decides.
    pub(crate) fn commit_new(
        &self,
        probe: &Probe<'_>,
        data: Bytes,
        deadline: u64,
        now: u64,
        guard: &Guard,
    ) -> bool {
        let mut new = Some(Version::boxed(data, deadline));
        loop {
            let (e, ours) = self.link_fresh(probe, new.as_ref().expect("version"), guard);
            if ours {
                return true;
            }
            match self.take_over(&e, probe.hash, new.take().expect("version"), now, guard) {
                Ok(inserted) => return inserted,
                Err(back) => new = Some(back),
            }
        }
    }

    /// commit_new on an existing node: a live version wins (`Ok(false)`, the node untouched);
    /// an expired one is replaced by a CAS from exactly the version examined (I3: a commit or
    /// commit_new that lands first makes the CAS fail and is re-examined), which is an
    /// overwrite in every respect the protocol cares about, so it takes overwrite's lowering
    /// step (the commit side of the handshake). A tombstone: help unlink, `Err(new)`, and the
    /// caller links a fresh node.
    fn take_over(
        &self,
        e: &Entry<'_, Key, Node>,
        hash: u64,
        mut new: Box<Version>,
        now: u64,
        guard: &Guard,
    ) -> Result<bool, Box<Version>> {
        let node = e.value();
        let deadline = new.deadline;
        let mut cur = node.version.load(guard);
        loop {
            let Some(v) = cur.get() else {
                e.remove();
                return Err(new);
            };
            if v.deadline > now {
                return Ok(false); // a live session holds the token
            }
            match self.swap(node, cur, v, new, guard) {
                Ok(()) => break,
                Err((back, actual)) => (new, cur) = (back, actual),
            }
        }
        self.lower(node, hash, deadline, guard);
        Ok(true)
    }

    /// Replaces `probe`'s session only if a live one holds the token (redis's `SET XX`);
    /// `true` if it did. `data: None` keeps the examined version's data (a touch: only the
    /// deadline changes). `deadline` must be after `now`.
    ///
    /// Never links a node, so a session deleted or expired meanwhile stays gone. The CAS is
    /// from the live version examined; on failure it re-examines what won (with `None`, the
    /// winner's data is kept, so a concurrent commit is never undone by a touch). Then
    /// overwrite's lowering step.
    pub(crate) fn replace_live(
        &self,
        probe: &Probe<'_>,
        data: Option<Bytes>,
        deadline: u64,
        now: u64,
        guard: &Guard,
    ) -> bool {
        'lookup: loop {
            let Some(e) = self.entry(probe, guard) else {
                return false;
            };
            let node = e.value();
            let mut cur = node.version.load(guard);
            loop {
                let Some(v) = cur.get() else {
                    // Tombstoned: help unlink; a fresh node may be linked by now.
                    e.remove();
                    continue 'lookup;
                };
                if v.deadline <= now {
                    return false;
                }
                let data = data.clone().unwrap_or_else(|| v.data.clone());
                let delta = data.len() as isize - v.data.len() as isize;
                match node
                    .version
                    .replace(cur, Some(Version::boxed(data, deadline)), guard)
                {
                    Ok(()) => {
                        self.account(0, delta);
                        self.lower(node, probe.hash, deadline, guard);
                        return true;
                    }
                    Err((_, actual)) => cur = actual,
                }
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
            let Some(old) = cur.get() else {
                e.remove();
                return Err(new);
            };
            match self.swap(node, cur, old, new, guard) {
                Ok(()) => break,
                Err((back, actual)) => (new, cur) = (back, actual),
            }
        }
        // Handshake, commit side: the version is written; read `scheduled` by RMW.
        self.lower(node, hash, deadline, guard);
        Ok(())
    }

    /// Swaps the node's version `cur` (holding `old`) for `new` by CAS, accounting the size
    /// change; on failure gives `new` back with what the slot holds now.
    fn swap<'g>(
        &self,
        node: &Node,
        cur: Current<'g, Version>,
        old: &Version,
        new: Box<Version>,
        guard: &'g Guard,
    ) -> Result<(), (Box<Version>, Current<'g, Version>)> {
        let delta = new.data.len() as isize - old.data.len() as isize;
        match node.version.replace(cur, Some(new), guard) {
            Ok(()) => {
                self.account(0, delta);
                Ok(())
            }
            Err((back, actual)) => Err((back.expect("version given back"), actual)),
        }
    }

    /// Commit's lowering step: if `deadline` is earlier than `scheduled`, move `scheduled`
    /// down to it (CAS-min), then file an entry there. The order matters for I2: filing first
    /// would let cleanup pop the new entry, see `scheduled` differ and drop it as stale.
    fn lower(&self, node: &Node, hash: u64, deadline: u64, guard: &Guard) {
        let mut s = if seeded_bug!(HandshakePlainLoads) {
            node.scheduled.load(Ordering::Acquire) // BUG (loom only): a load, not an RMW.
        } else {
            node.scheduled.fetch_add(0, Ordering::AcqRel)
        };
        while deadline < s {
            if seeded_bug!(FileBeforeLower) {
                self.file(deadline, hash, node.id, guard); // BUG (loom only): file, then lower.
            }
            match node
                .scheduled
                .compare_exchange(s, deadline, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // BUG (loom only): LowerWithoutFiling files nothing; FileBeforeLower did above.
                    let filed = seeded_bug!(FileBeforeLower) || seeded_bug!(LowerWithoutFiling);
                    if !filed {
                        self.file(deadline, hash, node.id, guard);
                    }
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
        let Some(e) = self.entry(probe, guard) else {
            return false;
        };
        let node = e.value();
        let mut cur = node.version.load(guard);
        loop {
            let Some(old) = cur.get() else {
                // Another delete or cleanup owns the removal; help unlink.
                e.remove();
                return false;
            };
            // The CAS winner owns the removal (never trust the index's `remove` result).
            let freed = size(probe.token, &old.data);
            match node.version.replace(cur, None, guard) {
                Ok(()) => {
                    self.account(-1, -freed);
                    break;
                }
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
        let mut e = self.primary.lower_bound(&hash, guard)?;
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

    /// The deadline of this shard's first expiry entry that is not of the token hash `keep`.
    pub(crate) fn front_deadline(&self, keep: u64, guard: &Guard) -> Option<u64> {
        self.front_not_of(keep, guard).map(|e| e.key().0)
    }

    fn front_not_of<'g>(&'g self, keep: u64, guard: &'g Guard) -> Option<Entry<'g, ExpKey, ()>> {
        let mut e = self.expiry.front(guard)?;
        while e.key().1 == keep {
            e = e.next()?;
        }
        Some(e)
    }

    /// Eviction: pops the first expiry entry not of `keep` (the session committing now) and
    /// settles it as cleanup would at the entry's own deadline: the session is tombstoned
    /// (CAS on the version examined, I3) if that deadline is its deadline, else its entry is
    /// rescheduled (it was extended) or dropped (stale). The same path as cleanup, from the
    /// front, whatever the deadline. `None` if the shard has nothing to pop.
    pub(crate) fn evict_front(&self, keep: u64, guard: &Guard) -> Option<Swept> {
        let e = self.front_not_of(keep, guard)?;
        let (d, hash, id) = *e.key();
        if !e.remove() {
            return Some(Swept::default()); // another evictor or cleanup popped it
        }
        drop(e);
        Some(self.settle(d, hash, id, d, guard))
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
                let examined = if seeded_bug!(TombstoneUnexamined) {
                    node.version.load(guard) // BUG (loom only): whatever the slot holds now.
                } else {
                    cur
                };
                match node.version.replace(examined, None, guard) {
                    Ok(()) => {
                        self.account(-1, -size(e.key().token(), &v.data));
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
            let latest = if seeded_bug!(HandshakePlainLoads) {
                node.version.load(guard) // BUG (loom only): a load, not an RMW.
            } else {
                node.version.read_latest(cur, guard)
            };
            if !latest.same(cur) && !seeded_bug!(NoHandshakeRecheck) {
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
