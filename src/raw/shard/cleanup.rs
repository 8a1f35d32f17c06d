//! Cleanup and eviction on one shard: popping due expiry entries and settling each (the
//! step order: `DESIGN.md`). Every change to a node goes through the shard's own steps
//! (`update`, `file`, `lower`, `unlink`).

use super::state::{ExpKey, Shard};
use super::update::{Step, Updated};
use crate::raw::expiry_index::Entry;
use crate::raw::node::Node;
use crate::raw::token_index::{Key, Located};
use crate::seeded_bugs::seeded_bug;
use crate::sync::{Guard, Ordering};
use smallvec::SmallVec;
use std::sync::Arc;

/// Due expiry entries a cleanup pass pops before settling them (see [`Shard::sweep`]).
const SWEEP_BATCH: usize = 32;

/// How [`Shard::settle`] settled a popped expiry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Its session had expired: tombstoned and unlinked.
    Reclaimed,
    /// Its session's deadline had moved later: the entry was refiled there.
    Rescheduled,
    /// It no longer stood for its node (left by shortening or by a race): dropped.
    Stale,
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
    /// Counts one settled entry.
    pub(crate) fn add(&mut self, s: Settled) {
        match s {
            Settled::Reclaimed => self.reclaimed += 1,
            Settled::Rescheduled => self.rescheduled += 1,
            Settled::Stale => self.stale += 1,
        }
    }

    pub(crate) fn merge(&mut self, o: Swept) {
        self.reclaimed += o.reclaimed;
        self.rescheduled += o.rescheduled;
        self.stale += o.stale;
    }
}

impl Shard {
    /// One cleanup pass over this shard: pops every entry with `deadline <= now` and settles
    /// its session ([`settle`](Self::settle)).
    pub(crate) fn sweep(&self, now: u64, guard: &Guard) -> Swept {
        if let Some(h) = &self.hints {
            h.finish_move(guard); // a doubling's last hints, off the commits' path
        }
        let mut swept = Swept::default();
        let mut batch: SmallVec<[(u64, Arc<Node>); SWEEP_BATCH]> = SmallVec::new();
        let mut places: SmallVec<[Located<'_, Node>; SWEEP_BATCH]> = SmallVec::new();
        let seen = self.front_word();
        loop {
            while batch.len() < SWEEP_BATCH {
                let Some(front) = self.expiry.front(guard) else {
                    break;
                };
                let d = front.key().0;
                if d > now {
                    break;
                }
                // Whoever unlinks the entry (a CAS on its tower) settles it.
                if front.remove() {
                    batch.push((d, front.value().clone()));
                }
            }
            if batch.is_empty() {
                self.note_popped(seen, guard);
                return swept;
            }
            // Reads only, before settling any, back to back (a settle's locked instructions
            // would stall the loads after them): load each popped node's version and find
            // where its token index links it, so their cache misses overlap; `settle` then
            // runs the protocol's steps and unlinks from that place, not by a second look-up.
            for (_, node) in &batch {
                if let Some(v) = node.version.load(guard).get() {
                    std::hint::black_box(v.deadline);
                }
                places.push(self.tokens_of(node.hash).locate(node, guard));
            }
            for ((d, node), at) in batch.drain(..).zip(places.drain(..)) {
                swept.add(self.settle(d, &node, now, at, guard));
            }
        }
    }

    /// The deadline of this shard's first expiry entry (`u64::MAX`: none), and of its first
    /// entry not of `keep`'s token.
    pub(crate) fn fronts(&self, keep: Key<'_>, guard: &Guard) -> (u64, Option<u64>) {
        match self.expiry.front(guard) {
            None => (u64::MAX, None),
            Some(e) => (e.key().0, skip_keep(e, keep).map(|e| e.key().0)),
        }
    }

    /// The first expiry entry whose node is not `keep`'s token (matched by hash, then by
    /// token: tokens that only share a hash are evictable).
    fn front_not_of<'g>(
        &'g self,
        keep: Key<'_>,
        guard: &'g Guard,
    ) -> Option<Entry<'g, ExpKey, Arc<Node>>> {
        skip_keep(self.expiry.front(guard)?, keep)
    }

    /// Eviction: pops the first expiry entry not of `keep` (the session committing now) and
    /// settles it as cleanup would at the entry's own deadline: the session is tombstoned
    /// (CAS on the version examined, I3) if that deadline is its deadline, else its entry is
    /// rescheduled (it was extended) or dropped (stale). The same path as cleanup, from the
    /// front, whatever the deadline. `None` if the shard has nothing to pop, or another thread
    /// popped the entry first.
    pub(crate) fn evict_front(&self, keep: Key<'_>, guard: &Guard) -> Option<Settled> {
        let e = self.front_not_of(keep, guard)?;
        let d = e.key().0;
        if !e.remove() {
            return None; // another evictor or cleanup popped it
        }
        let node = e.value().clone();
        Some(self.settle(d, &node, d, Located::unknown(), guard))
    }

    /// Settles a popped entry at deadline `d` for `node`. The entry holds the node itself,
    /// so no look-up is needed: a node whose version is not the tombstone is linked (only a
    /// tombstoned node is ever unlinked, and null is final). `at`: where the token index
    /// links the node, as the caller found it under the same guard (or unknown).
    fn settle(
        &self,
        d: u64,
        node: &Arc<Node>,
        now: u64,
        at: Located<'_, Node>,
        guard: &Guard,
    ) -> Settled {
        if node.scheduled.load(Ordering::Acquire) != d {
            // I5: `scheduled` moved, so another entry stands for this node: this one is stale.
            return Settled::Stale;
        }
        // I3: tombstone only the version examined, if it has expired.
        let (done, _) = self.update(node, None, guard, |v, _| {
            if v.deadline <= now {
                Step::Tombstone
            } else {
                Step::Stop(v.deadline)
            }
        });
        let (later, examined) = match done {
            Updated::Swapped => {
                self.tokens_of(node.hash).unlink_located(node, at, guard);
                return Settled::Reclaimed;
            }
            Updated::Gone => return Settled::Stale, // another remover won (update helped unlink)
            Updated::Stopped(later, examined) => (later, examined),
        };
        // I2: extended, so move `scheduled` from d to the version's deadline, then file there.
        if node
            .scheduled
            .compare_exchange(d, later, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Settled::Stale; // a shortening commit lowered it and filed its own entry.
        }
        self.file(later, node, guard);
        // Handshake, cleanup side: re-read the version by RMW. A commit that swapped it
        // after we read it may have seen the old `scheduled` and filed nothing.
        let latest = if seeded_bug!(HandshakePlainLoads) {
            node.version.load(guard) // BUG (loom only): a load, not an RMW.
        } else {
            node.version.read_latest(examined, guard)
        };
        if !latest.same(examined) && !seeded_bug!(NoHandshakeRecheck) {
            if let Some(v2) = latest.get() {
                self.lower(node, v2.deadline, guard);
            }
        }
        Settled::Rescheduled
    }
}

/// `e`, or the first entry after it, that is not of `keep`'s token (matched by hash, then by
/// token: tokens that only share a hash are evictable).
fn skip_keep<'g>(
    mut e: Entry<'g, ExpKey, Arc<Node>>,
    keep: Key<'_>,
) -> Option<Entry<'g, ExpKey, Arc<Node>>> {
    while e.value().hash == keep.hash && *e.value().token == *keep.token {
        e = e.next()?;
    }
    Some(e)
}
