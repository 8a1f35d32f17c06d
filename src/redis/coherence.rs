//! The local tier and what keeps it coherent with Redis inside one instance: per-bucket
//! tickets that order an operation's local step against every other operation and
//! invalidation of its token, and the O(1) flush (a fresh, empty tier swapped in).
//!
//! # Invariants (kept here)
//! - **Check-then-store is atomic per bucket.** A fill or write stores its value in the local
//!   tier only in [`Tier::settle`], under its bucket's lock, and only if nothing bumped the
//!   bucket's epoch since its [`Ticket`] was taken (before the command was sent) and the tier
//!   has not been swapped. Every invalidation and every other settle bumps the epoch under the
//!   same lock. So no value is ever visible locally that an invalidation, a delete or a newer
//!   write of the same bucket has overtaken, not even for an instant: the old design stored
//!   first and checked after, and a `find` in between could read a session after its own
//!   `delete` had returned.
//! - **Reads take no lock.** [`Tier::local`] is an `ArcSwap` load; the bucket locks are taken
//!   only by operations that have just finished a Redis round trip, and by invalidations.
//! - **A flush is O(1).** [`Tier::flush`] swaps in an empty store; the old one is dropped on a
//!   blocking-pool thread, never on a runtime thread and never under a lock. An operation whose
//!   ticket names the old tier finds it swapped at settle time and stores nothing in the new
//!   one; if the swap lands between its check and its store, the store goes into the retired
//!   tier, which no later read loads.

use crate::{Bytes, MemStore};
use ahash::RandomState;
use arc_swap::{ArcSwap, Guard};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// Buckets of the conflict epochs (a power of two).
const BUCKETS: usize = 4096;

/// Locks `m`, ignoring poisoning: the near-cache's critical sections (a bucket's epoch, the
/// connection slot, the pause points) only replace whole values.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an operation saw before its round trip: its bucket's epoch and the tier.
pub(super) struct Ticket {
    bucket: usize,
    epoch: u64,
    tier: Arc<MemStore>,
}

/// An operation's local step, applied by [`Tier::settle`].
pub(super) enum Step {
    /// Redis holds this value with this deadline: keep it locally.
    Store(Bytes, SystemTime),
    /// Redis holds nothing (or nothing cacheable) under the token.
    Drop,
}

/// An empty local tier, ready to be swapped in by [`Tier::flush`].
pub(super) struct Fresh(Option<Arc<MemStore>>);

/// The local tier, swapped whole on a flush.
pub(super) struct Tier {
    current: ArcSwap<MemStore>,
    /// Builds each fresh tier: same clock and limits, no cleanup thread (the near-cache's own
    /// task runs cleanup on whichever tier is current).
    builder: crate::Builder,
    /// Per bucket: the epoch, bumped by every settle and invalidation, and the lock that makes
    /// an operation's check of it and its local store one step.
    buckets: Box<[Mutex<u64>]>,
    hasher: RandomState,
}

impl Tier {
    /// A tier built by `builder` (which must have no cleanup thread).
    pub(super) fn new(builder: crate::Builder) -> std::io::Result<Tier> {
        let first = builder.clone().try_build()?;
        Ok(Tier {
            current: ArcSwap::from_pointee(first),
            builder,
            buckets: (0..BUCKETS).map(|_| Mutex::new(0)).collect(),
            hasher: RandomState::new(),
        })
    }

    /// The current tier, for reads: lock-free.
    pub(super) fn local(&self) -> Guard<Arc<MemStore>> {
        self.current.load()
    }

    /// The current tier as an owned handle.
    pub(super) fn local_full(&self) -> Arc<MemStore> {
        self.current.load_full()
    }

    fn bucket(&self, token: &str) -> usize {
        (self.hasher.hash_one(token) as usize) & (BUCKETS - 1)
    }

    /// Taken before an operation's command is sent, and before it picks its connection (see
    /// `Shared::live`): a tier swap that comes with a new connection happens under the
    /// connection lock, so an operation that saw the old tier either gets the old connection
    /// or finds the tier swapped at [`settle`](Self::settle).
    pub(super) fn begin(&self, token: &str) -> Ticket {
        let bucket = self.bucket(token);
        let epoch = *lock(&self.buckets[bucket]);
        Ticket {
            bucket,
            epoch,
            tier: self.local_full(),
        }
    }

    /// An operation's local step, after Redis answered it. Under the bucket's lock: if the
    /// epoch moved (another operation settled or an invalidation arrived for the bucket since
    /// `begin`) or the tier was swapped, the local steps may be ordered differently from
    /// Redis's, so the token is dropped instead (a spurious miss at worst) and `true` is
    /// returned; otherwise `step` is applied. Either way the epoch is bumped, so of two
    /// overlapping operations the one that settles later always sees the other.
    pub(super) fn settle(&self, ticket: Ticket, token: &str, step: Step) -> bool {
        let mut epoch = lock(&self.buckets[ticket.bucket]);
        let raced = *epoch != ticket.epoch || !Arc::ptr_eq(&self.current.load(), &ticket.tier);
        *epoch = epoch.wrapping_add(1);
        match step {
            Step::Store(data, deadline) if !raced => {
                if ticket.tier.commit(token, data, deadline).is_err() {
                    ticket.tier.delete(token); // a full tier: not cached
                }
            }
            _ => self.current.load().delete(token),
        }
        raced
    }

    /// An invalidation of `token` pushed by Redis: drop it, and make every operation in
    /// flight on its bucket drop what it would store.
    pub(super) fn invalidate(&self, token: &str) {
        let mut epoch = lock(&self.buckets[self.bucket(token)]);
        *epoch = epoch.wrapping_add(1);
        self.current.load().delete(token);
    }

    /// An empty store for [`flush`](Self::flush), built before any lock is taken (its
    /// shards are allocated here: O(shards), nothing per session).
    pub(super) fn fresh(&self) -> Fresh {
        Fresh(self.builder.clone().try_build().ok().map(Arc::new))
    }

    /// Empties the local tier in O(1): swaps in `fresh` and drops the old tier off the
    /// runtime's threads. A build failure cannot happen (no cleanup thread is started); were
    /// it to, the tier is cleared ([`MemStore::clear`]) on a blocking thread instead.
    pub(super) fn flush(&self, fresh: Fresh) {
        match fresh.0 {
            Some(fresh) => retire(self.current.swap(fresh)),
            None => {
                let old = self.local_full();
                off_runtime(move || {
                    old.clear();
                });
            }
        }
    }
}

/// Drops a retired tier (possibly millions of sessions) where it blocks no async task.
fn retire(old: Arc<MemStore>) {
    off_runtime(move || drop(old));
}

fn off_runtime(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(f)),
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn tier() -> Tier {
        Tier::new(crate::Builder::new().cleanup_interval(Duration::ZERO)).unwrap()
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(600)
    }

    #[test]
    fn a_flush_swaps_in_an_empty_tier_without_walking_the_old_one() {
        let tier = tier();
        let old = tier.local_full();
        for i in 0..10_000 {
            old.commit(&format!("t{i}"), "x", later()).unwrap();
        }
        tier.flush(tier.fresh());
        assert!(tier.local().is_empty(), "the current tier is empty");
        // O(1): the retired tier was not walked (the old flush deleted every entry in turn).
        assert_eq!(old.len(), 10_000);
        assert!(!Arc::ptr_eq(&tier.local_full(), &old));
    }

    #[test]
    fn a_settle_stores_only_if_nothing_touched_the_bucket() {
        let tier = tier();
        let quiet = tier.begin("t");
        assert!(!tier.settle(quiet, "t", Step::Store("v1".into(), later())));
        assert_eq!(tier.local().find("t").as_deref(), Some(&b"v1"[..]));

        // An invalidation during the round trip: nothing is stored, the old entry goes.
        let raced = tier.begin("t");
        tier.invalidate("t");
        assert!(tier.settle(raced, "t", Step::Store("v0".into(), later())));
        assert_eq!(tier.local().find("t"), None);

        // Another operation settled first: the later one stores nothing.
        let (first, second) = (tier.begin("t"), tier.begin("t"));
        assert!(!tier.settle(first, "t", Step::Store("v2".into(), later())));
        assert!(tier.settle(second, "t", Step::Store("v3".into(), later())));
        assert_eq!(tier.local().find("t"), None);

        // A flush during the round trip: nothing is stored in the fresh tier.
        let flushed = tier.begin("t");
        tier.flush(tier.fresh());
        assert!(tier.settle(flushed, "t", Step::Store("v4".into(), later())));
        assert!(tier.local().is_empty());
    }
}
