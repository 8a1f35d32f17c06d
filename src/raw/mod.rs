//! The raw store: everything below the public facade (`store/`). It routes each token to its
//! shard, checks input and bounds, runs the protocol's operations, evicts and sweeps, and
//! keeps the counters. Callers (the facade, the ticker's cleanup passes and snapshots) hand it tokens,
//! data and deadlines in nanoseconds; it pins the epoch and reads the clock itself.
//!
//! - `shard/`: one shard's two indexes and the protocol that keeps them consistent, a file
//!   per role (writes, reads, cleanup and eviction: see `shard/mod.rs`); the invariants, the
//!   step order and what loom checks: `DESIGN.md`.
//! - `token_index/`, `expiry_index.rs`: the two indexes, each behind the small interface
//!   the protocol needs; `node.rs`: a session's node, which both hold.
//! - `hints.rs`: the hint table that takes point operations to a node without a descent.
//! - `slot.rs`, `version.rs`: a node's version pointer and the version's layout (with
//!   `hints.rs`, the crate's only `unsafe` code); `paced.rs`: how released versions are
//!   freed.
//! - `bounds.rs`: limits and admission checks; `counters.rs`: statistics.
//! - [`Walk`] (here): the one walk over live sessions, which `MemStore::iter` and snapshot
//!   saves share.

mod bounds;
mod counters;
mod expiry_index;
#[allow(unsafe_code)]
mod hints;
mod node;
#[cfg(not(memstore_loom))]
mod paced;
mod shard;
#[allow(unsafe_code)]
mod slot;
mod token_index;
#[allow(unsafe_code)]
mod version;

pub use bounds::{WhenFull, SESSION_OVERHEAD};
pub use token_index::TokenIndex;
pub use version::FIND_COPY_LIMIT;

pub(crate) use bounds::Bounds;
pub(crate) use counters::{Counters, ReadStats};
pub(crate) use shard::{Settled, Shard, Swept, Unfiled};
pub(crate) use token_index::Key;
pub(crate) use version::Version;

use crate::clock::{self, StoreClock};
use crate::seeded_bugs::seeded_bug;
use crate::sync::{self, Guard};
use crate::Error;
use ahash::RandomState;
use bytes::Bytes;
use crossbeam_utils::CachePadded;
use std::sync::Arc;
use std::time::SystemTime;

/// Skiplists that hold a store's token index (split across its shards): a descent costs
/// log2(sessions / TOKEN_SKIPLISTS) levels, and each skiplist, even empty, costs its head
/// tower's memory (BENCHMARKS.md weighs the two).
const TOKEN_SKIPLISTS: usize = 4096;

/// Sessions a [`Walk`] takes per pin where the token index resumes in key order cheaply (the
/// skiplist): bounds how long a walk holds the epoch and how much a batch buffers.
const WALK_BATCH: usize = 64;

/// What a raw store is built from ([`Builder`](crate::Builder)'s settings).
pub(crate) struct Config {
    /// A power of two, at most 4096.
    pub(crate) shards: usize,
    pub(crate) token_index: TokenIndex,
    pub(crate) clock: StoreClock,
    pub(crate) max_token_len: usize,
    pub(crate) max_data_len: usize,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) max_bytes: Option<usize>,
    pub(crate) when_full: WhenFull,
    /// Whether a skiplist token index has a hint table (`hints.rs`); off only in tests.
    pub(crate) hints: bool,
    /// Tests only (feature `test-hooks`): every token hashes alike.
    #[cfg(feature = "test-hooks")]
    pub(crate) collide: bool,
}

/// The raw store, shared by the facade and the ticker thread (cleanup passes, snapshots).
pub(crate) struct Store {
    shards: Box<[CachePadded<Shard>]>,
    /// `hash >> shift` is the shard index.
    shift: u32,
    hasher: RandomState,
    #[cfg(feature = "test-hooks")]
    collide: bool,
    pub(crate) clock: StoreClock,
    pub(crate) max_token_len: usize,
    pub(crate) max_data_len: usize,
    pub(crate) token_index: TokenIndex,
    /// `Some` only when a bound is set.
    pub(crate) bounds: Option<Bounds>,
    pub(crate) counters: Counters,
    pub(crate) reads: ReadStats,
}

impl Store {
    pub(crate) fn new(c: Config) -> Store {
        let n = c.shards;
        // Skiplist token indexes per shard: TOKEN_SKIPLISTS in all, so a descent is
        // log2(sessions / TOKEN_SKIPLISTS) levels whatever the shard count.
        let sub_bits = (TOKEN_SKIPLISTS / n).max(1).trailing_zeros();
        let bounds = Bounds::new(c.max_sessions, c.max_bytes, c.when_full, n);
        let usage = bounds.as_ref().map(|b| b.usage.clone());
        Store {
            shards: (0..n)
                .map(|i| {
                    CachePadded::new(Shard::new(
                        usage.clone(),
                        c.token_index,
                        n.trailing_zeros(),
                        sub_bits,
                        c.hints,
                        i,
                    ))
                })
                .collect(),
            shift: 64 - n.trailing_zeros(),
            hasher: new_hasher(),
            #[cfg(feature = "test-hooks")]
            collide: c.collide,
            clock: c.clock,
            max_token_len: c.max_token_len,
            max_data_len: c.max_data_len,
            token_index: c.token_index,
            bounds,
            counters: Counters::default(),
            reads: ReadStats::new(),
        }
    }

    /// The shards, in key order.
    pub(crate) fn shards(&self) -> &[CachePadded<Shard>] {
        &self.shards
    }

    // ---- Input ----

    /// Validates a commit's input against this store's limits; the deadline in nanoseconds.
    #[inline]
    pub(crate) fn check(
        &self,
        token: &str,
        data_len: usize,
        expiry: SystemTime,
    ) -> Result<u64, Error> {
        self.check_token(token)?;
        if data_len > self.max_data_len {
            return Err(Error::DataTooLarge {
                len: data_len,
                max: self.max_data_len,
            });
        }
        clock::to_nanos(expiry).ok_or(Error::ExpiryOutOfRange)
    }

    pub(crate) fn check_token(&self, token: &str) -> Result<(), Error> {
        if token.is_empty() {
            return Err(Error::EmptyToken);
        }
        if token.len() > self.max_token_len {
            return Err(Error::TokenTooLong {
                len: token.len(),
                max: self.max_token_len,
            });
        }
        Ok(())
    }

    // ---- Routing ----

    /// The keyed hash of `token`: orders the token index, and its top bits pick the shard.
    #[inline]
    pub(crate) fn hash(&self, token: &str) -> u64 {
        #[cfg(feature = "test-hooks")]
        if self.collide {
            return 0;
        }
        self.hasher.hash_one(token)
    }

    /// The shard of `hash`: its top bits, so shards follow one another in key order.
    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    #[inline]
    fn route<'t>(&self, token: &'t str) -> (&Shard, Key<'t>) {
        let hash = self.hash(token);
        let key = Key {
            hash,
            token: token.as_bytes(),
        };
        (&self.shards[self.shard_index(hash)], key)
    }

    // ---- Operations: each validated by the caller (`check`), deadlines in nanoseconds ----

    /// Inserts or overwrites `token`'s session; a deadline at or before now deletes it.
    #[inline]
    pub(crate) fn commit(&self, token: &str, data: Bytes, deadline: u64) -> Result<(), Error> {
        let now = self.clock.now_nanos();
        let guard = sync::pin();
        let (shard, key) = self.route(token);
        if deadline <= now {
            shard.delete(key, &guard);
            return Ok(());
        }
        self.admit(shard, key, token.len() + data.len(), now, &guard)?;
        shard.commit(key, data, deadline, &guard);
        let popped = self.evict(key, &guard);
        drop(guard);
        sync::help_collect(popped);
        Ok(())
    }

    /// Inserts `token`'s session if no live session holds it; `true` if it did. A deadline
    /// at or before now inserts nothing and says whether the token was free.
    #[inline]
    pub(crate) fn commit_new(
        &self,
        token: &str,
        data: Bytes,
        deadline: u64,
    ) -> Result<bool, Error> {
        let (shard, key) = self.route(token);
        self.insert_new(shard, key, data, deadline, None)
    }

    /// A snapshot load's [`commit_new`](Self::commit_new): the token's `hash` computed by
    /// the caller (who sorted by it), and a fresh session's expiry entry left in `unfiled`
    /// for [`file_unfiled`](Self::file_unfiled), so that a window's entries are filed in
    /// deadline order rather than each at a random place in its shard's expiry index.
    pub(crate) fn load_new(
        &self,
        hash: u64,
        token: &str,
        data: Bytes,
        deadline: u64,
        unfiled: &mut Unfiled,
    ) -> Result<bool, Error> {
        let key = Key {
            hash,
            token: token.as_bytes(),
        };
        let shard = &self.shards[self.shard_index(hash)];
        self.insert_new(shard, key, data, deadline, Some(unfiled))
    }

    /// Files the expiry entries that [`load_new`](Self::load_new) left, shard by shard in
    /// deadline order (each insert then follows the last one's path), and empties `unfiled`.
    pub(crate) fn file_unfiled(&self, unfiled: &mut Unfiled) {
        if seeded_bug!(UnfiledNeverFiled) {
            unfiled.clear(); // BUG (loom only): the window's entries are never filed.
        }
        unfiled.sort_unstable_by_key(|(shard, dl, node)| (*shard, *dl, Arc::as_ptr(node)));
        for chunk in unfiled.chunks(256) {
            let guard = sync::pin(); // a short pin per chunk: reclamation is not held back
            for (shard, dl, node) in chunk {
                self.shards[*shard].file_fresh(*dl, node, &guard);
            }
        }
        unfiled.clear();
    }

    fn insert_new(
        &self,
        shard: &Shard,
        key: Key<'_>,
        data: Bytes,
        deadline: u64,
        unfiled: Option<&mut Unfiled>,
    ) -> Result<bool, Error> {
        let now = self.clock.now_nanos();
        let guard = sync::pin();
        if deadline <= now {
            return Ok(shard.find(key, || now, &guard).is_err());
        }
        if let Err(e) = self.admit(shard, key, key.token.len() + data.len(), now, &guard) {
            // A live session holds the token: nothing would be inserted, so nothing is refused.
            return match shard.find(key, || now, &guard) {
                Ok(_) => Ok(false),
                Err(_) => Err(e),
            };
        }
        let inserted = shard.commit_new(key, data, deadline, now, unfiled, &guard);
        let popped = self.evict(key, &guard);
        drop(guard);
        sync::help_collect(popped);
        Ok(inserted)
    }

    /// Replaces `token`'s session only if a live one holds it; `data: None` keeps its data
    /// (a touch). A deadline at or before now deletes a live session. `true` if it did.
    #[inline]
    pub(crate) fn replace_live(
        &self,
        token: &str,
        data: Option<Bytes>,
        deadline: u64,
    ) -> Result<bool, Error> {
        let now = self.clock.now_nanos();
        let guard = sync::pin();
        let (shard, key) = self.route(token);
        if deadline <= now {
            if shard.find(key, || now, &guard).is_err() {
                return Ok(false);
            }
            return Ok(shard.delete(key, &guard));
        }
        // A touch keeps the data: it never grows the store, so it neither admits nor evicts.
        let new_data = data.is_some();
        if let Some(data) = &data {
            if let Err(e) = self.admit(shard, key, token.len() + data.len(), now, &guard) {
                // No live session holds the token: nothing would be replaced or refused.
                return match shard.find(key, || now, &guard) {
                    Ok(_) => Err(e),
                    Err(_) => Ok(false),
                };
            }
        }
        let replaced = shard.replace_live(key, data, deadline, now, &guard);
        let popped = if new_data { self.evict(key, &guard) } else { 0 };
        drop(guard);
        sync::help_collect(popped);
        Ok(replaced)
    }

    /// Calls `f` with `token`'s live version, counting the read.
    #[inline]
    pub(crate) fn find_with<R>(&self, token: &str, f: impl FnOnce(&Version) -> R) -> Option<R> {
        let guard = sync::pin();
        let (shard, key) = self.route(token);
        let found = shard.find(key, || self.clock.now_nanos(), &guard);
        self.reads.record(&found);
        found.ok().map(f)
    }

    /// `token`'s live deadline (not counted as a read).
    pub(crate) fn deadline(&self, token: &str) -> Option<u64> {
        let now = self.clock.now_nanos();
        let guard = sync::pin();
        let (shard, key) = self.route(token);
        shard.find(key, || now, &guard).ok().map(|v| v.deadline)
    }

    /// Removes `token`'s session, if any.
    #[inline]
    pub(crate) fn delete(&self, token: &str) {
        let guard = sync::pin();
        let (shard, key) = self.route(token);
        shard.delete(key, &guard);
    }

    /// Deletes every session (each as `delete` would); how many this call removed.
    pub(crate) fn clear(&self) -> usize {
        let guard = sync::pin();
        let removed = self.shards.iter().map(|s| s.clear(&guard)).sum();
        drop(guard);
        // Free the retired versions and entries here, not in readers' pins.
        sync::collect_retired(2 * removed as u64);
        removed
    }

    // ---- Bounds ----

    /// Admission before a commit-like write of a session that will hold `size` bytes (token
    /// and data). A session that could never fit alone is refused whatever the policy.
    /// Refuse: checks against what the token holds now, reclaiming expired sessions once if
    /// that would make room. Evict: admits; the caller runs [`evict`](Self::evict) after the
    /// write.
    fn admit(
        &self,
        shard: &Shard,
        key: Key<'_>,
        size: usize,
        now: u64,
        guard: &Guard,
    ) -> Result<(), Error> {
        let Some(b) = &self.bounds else {
            return Ok(());
        };
        b.never_fits(size)?;
        if b.when_full == WhenFull::Refuse {
            let held = shard.held_size(key, guard);
            let grows = held.is_none_or(|h| size > h);
            if grows && b.fits(held, size).is_err() {
                self.sweep(now); // expired sessions make room first, maybe the token's own
                b.fits(shard.held_size(key, guard), size)?;
            }
        }
        Ok(())
    }

    /// After a write under [`WhenFull::EvictSoonest`]: evicts the soonest-expiring sessions
    /// of other tokens until the store is within its bounds again. Each pop reclaims a
    /// session, reschedules an extended one's entry (once per extension) or drops a stale
    /// entry, so the loop ends. Concurrent commits may overshoot by what they add between
    /// their write and their eviction: at most one session, and one session's bytes, per
    /// thread in flight. Returns the entries it popped (for [`sync::help_collect`]).
    fn evict(&self, keep: Key<'_>, guard: &Guard) -> u64 {
        let Some(b) = &self.bounds else { return 0 };
        if b.when_full != WhenFull::EvictSoonest {
            return 0;
        }
        let fronts = &b.usage.fronts;
        let mut popped = 0;
        // A shard whose first entry is `keep`'s: the deadline of its first other entry
        // stands in for its word (`keep` is never evicted).
        let mut instead: Option<(usize, u64)> = None;
        while b.maybe_over() && b.over() {
            let Some((i, seen)) = fronts.soonest(instead) else {
                // Every word reads "none" (a raise raced a filing): read the shards
                // themselves, and set the chosen shard's word from what was read.
                let soonest = (0..self.shards.len())
                    .filter_map(|i| {
                        let (first, other) = self.shards[i].fronts(keep, guard);
                        other.map(|d| (d, first, i))
                    })
                    .min();
                let Some((_, first, i)) = soonest else { break };
                fronts.lower(i, first);
                popped += u64::from(self.evict_from(i, guard, keep));
                continue;
            };
            let s = &self.shards[i];
            let (first, other) = s.fronts(keep, guard);
            if instead.is_none_or(|(j, _)| j != i) && first > seen {
                fronts.raise(i, seen, first); // the word was low: look again
                continue;
            }
            match other {
                None => instead = Some((i, u64::MAX)),
                Some(d) if d != first && instead.is_none() => instead = Some((i, d)),
                Some(_) => {
                    let word = fronts.get(i);
                    popped += u64::from(self.evict_from(i, guard, keep));
                    self.shards[i].note_popped(word, guard);
                    instead = None;
                }
            }
        }
        popped
    }

    /// Pops shard `i`'s first entry not of `keep` and settles it, counting what it did;
    /// `false` if another thread popped it first.
    fn evict_from(&self, i: usize, guard: &Guard, keep: Key<'_>) -> bool {
        let c = &self.counters;
        match self.shards[i].evict_front(keep, guard) {
            Some(Settled::Reclaimed) => Counters::add(&c.evicted, 1),
            Some(Settled::Rescheduled) => Counters::add(&c.rescheduled, 1),
            Some(Settled::Stale) => Counters::add(&c.stale, 1),
            None => return false,
        }
        true
    }

    /// Whether a session of `size` bytes fits the bounds as they stand, with no eviction and
    /// no token held (a snapshot load's check).
    pub(crate) fn fits_fresh(&self, size: usize) -> bool {
        self.bounds
            .as_ref()
            .is_none_or(|b| b.fits(None, size).is_ok())
    }

    // ---- Cleanup ----

    /// One cleanup pass over every shard at `now`.
    pub(crate) fn sweep(&self, now: u64) -> Swept {
        let guard = sync::pin();
        let mut total = Swept::default();
        for shard in self.shards.iter() {
            total.merge(shard.sweep(now, &guard));
        }
        drop(guard);
        // The pass retired a version and an expiry entry per reclaimed session; free them
        // here rather than leave them to whichever reader's pin happens to collect next.
        sync::collect_retired(2 * (total.reclaimed + total.stale + total.rescheduled));
        let c = &self.counters;
        Counters::add(&c.passes, 1);
        Counters::add(&c.reclaimed, total.reclaimed);
        Counters::add(&c.rescheduled, total.rescheduled);
        Counters::add(&c.stale, total.stale);
        total
    }

    /// Counts a cleanup pass that panicked ([`Stats::cleanup_panics`](crate::Stats)).
    pub(crate) fn note_cleanup_panic(&self) {
        Counters::add(&self.counters.cleanup_panics, 1);
    }

    // ---- Sizes ----

    /// Sessions held. A bounded store reads its one store-wide count (the one its bounds are
    /// kept by); an unbounded one sums its shards' counts (exact when no write is in flight).
    pub(crate) fn len(&self) -> usize {
        match &self.bounds {
            // The shards' counts, read one after another, can add a session evicted from a
            // shard already read to one committed into a shard read later.
            Some(b) => b.sessions(),
            None => self.shards.iter().map(|s| s.len()).sum(),
        }
    }

    /// Entries in the expiry indexes.
    pub(crate) fn expiry_entries(&self) -> usize {
        self.shards.iter().map(|s| s.expiry_len()).sum()
    }

    /// Bytes (tokens + data) held.
    pub(crate) fn bytes(&self) -> usize {
        usize::try_from(self.shards.iter().map(|s| s.bytes()).sum::<i64>()).unwrap_or(0)
    }

    /// What a byte bound counts: tokens and data plus [`SESSION_OVERHEAD`] per session, by
    /// the bounded store's own counts (an unbounded store: the same sum from its shards).
    pub(crate) fn charged_bytes(&self) -> usize {
        match &self.bounds {
            Some(b) => b.charged_bytes(),
            None => self.bytes() + self.len() * SESSION_OVERHEAD,
        }
    }

    /// Bytes of the shards' hint tables.
    pub(crate) fn hint_table_bytes(&self) -> usize {
        let guard = sync::pin();
        self.shards.iter().map(|s| s.hint_table_bytes(&guard)).sum()
    }

    /// Hints to tombstoned nodes in the shards' hint tables (left only by races).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn dead_hints(&self) -> usize {
        let guard = sync::pin();
        self.shards.iter().map(|s| s.dead_hints(&guard)).sum()
    }

    /// Checks every shard's structural invariants (DESIGN.md's I2 and I5); only meaningful
    /// when no operation is in flight. The number of stale expiry entries.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn check_invariants(&self) -> Result<usize, String> {
        let guard = sync::pin();
        let mut stale = 0;
        for s in self.shards.iter() {
            stale += s.check_quiescent(&guard)?;
        }
        Ok(stale)
    }
}

/// A walk over a store's live sessions in key order (the keyed hash, then the token), a batch
/// at a time: each [`next_batch`](Self::next_batch) pins the epoch for one batch only and
/// resumes after the last key taken, so no guard is held between batches and a walk holds
/// O(1) state (with the hash index a batch is a whole shard: it collects one to resume).
///
/// A session live for the whole walk is taken exactly once; one committed or deleted during
/// it may or may not be. Keys only grow along a walk, so no token is taken twice, even one
/// deleted and committed again (a new node under the same key) while the walk runs.
pub(crate) struct Walk<'a> {
    raw: &'a Store,
    /// The shard being walked; `shards().len()` once the walk is done.
    shard: usize,
    /// The key of the last session taken in `shard` (or the position resumed after).
    after: Option<(u64, String)>,
    /// `Some`: the one clock reading that decides which sessions are live (a snapshot's
    /// creation time); `None`: the clock is read for each batch.
    at: Option<u64>,
}

impl<'a> Walk<'a> {
    /// A walk of `raw`'s live sessions after the key `after` (`None`: from the start), which
    /// reads the clock for each batch: a session whose deadline has passed when its batch
    /// is taken is never taken, however long the walk.
    pub(crate) fn after(raw: &'a Store, after: Option<(u64, &str)>) -> Walk<'a> {
        Walk {
            raw,
            shard: after.map_or(0, |(hash, _)| raw.shard_index(hash)),
            after: after.map(|(hash, token)| (hash, token.to_owned())),
            at: None,
        }
    }

    /// A walk of all of `raw`'s sessions live at one clock reading, taken now (a snapshot's
    /// creation time), and that reading: a session is taken if its deadline is after it.
    pub(crate) fn at_now(raw: &'a Store) -> (Walk<'a>, u64) {
        let now = raw.clock.now_nanos();
        let walk = Walk {
            at: Some(now),
            ..Walk::after(raw, None)
        };
        (walk, now)
    }

    /// Whether every shard has been walked.
    pub(crate) fn is_done(&self) -> bool {
        self.shard >= self.raw.shards.len()
    }

    /// Calls `f(token, version)` with the next batch of live sessions, in key order, under
    /// one pin: up to [`WALK_BATCH`] of them from the current shard, or the rest of it (none
    /// when the shard is empty, or the walk done).
    pub(crate) fn next_batch(&mut self, mut f: impl FnMut(&str, &Version)) {
        let Some(shard) = self.raw.shards.get(self.shard) else {
            return;
        };
        let limit = shard.walk_batch(WALK_BATCH);
        let now = self.at.unwrap_or_else(|| self.raw.clock.now_nanos());
        let guard = sync::pin();
        let start = self.after.take();
        let mut last = start.clone();
        let mut taken = 0;
        let after = start.as_ref().map(|(hash, token)| Key {
            hash: *hash,
            token: token.as_bytes(),
        });
        shard.walk_live(after, now, &guard, |hash, token, v| {
            if let Some((h, t)) = &mut last {
                if (hash, token.as_bytes()) <= (*h, t.as_bytes()) {
                    return true; // not after the last key taken: a repeat
                }
                *h = hash;
                t.clear();
                t.push_str(token);
            } else {
                last = Some((hash, token.to_owned()));
            }
            f(token, v);
            taken += 1;
            taken < limit
        });
        drop(guard);
        if taken >= limit {
            self.after = last;
        } else {
            self.shard += 1; // the shard is done
        }
    }
}

#[cfg(not(memstore_loom))]
fn new_hasher() -> RandomState {
    RandomState::new()
}

/// Fixed seeds under loom: a model must make the same choices on every iteration, and the
/// hash orders both indexes.
#[cfg(memstore_loom)]
fn new_hasher() -> RandomState {
    RandomState::with_seeds(1, 2, 3, 4)
}
