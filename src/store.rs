//! The public layer: [`MemStore`], its [`Builder`], [`Iter`] and [`Stats`]. It validates
//! input, pins the epoch, reads the clock and routes each token to its shard; `raw.rs` owns
//! the protocol.

use crate::cleanup::Cleaner;
use crate::clock::{self, Clock, StoreClock};
use crate::index::TokenIndex;
use crate::raw::{Miss, Probe, Shard, Swept, Usage};
use crate::sync::{self, Arc, Ordering, StatU64};
use crate::version::Version;
use crate::Error;
use ahash::RandomState;
use bytes::Bytes;
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// The default cleanup interval of [`MemStore::new`]: one minute, as in scs.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
/// The default limit on a token's length in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 256;
/// [`MemStore::find`] copies data up to this many bytes, and shares larger data by reference
/// count. Measured (BENCHMARKS.md): on a hot session read by several threads, a 128-byte
/// copy is faster than the shared counter's cache-line traffic.
pub const FIND_COPY_LIMIT: usize = 1024;
/// The fixed memory a session costs beyond its token and data (its node, version header and
/// index entries, with the allocator's overhead), counted against [`Builder::max_bytes`].
/// Measured as RSS growth per session at 1M sessions minus tokens and data (BENCHMARKS.md):
/// about 212 bytes with the skiplist token index, 181 with the hash index.
pub const SESSION_OVERHEAD: usize = 224;
/// The default limit on a session's data in bytes (1 MiB).
pub const DEFAULT_MAX_DATA_LEN: usize = 1 << 20;

/// A lock-free, in-memory session store.
///
/// The contract is scs `memstore`'s: [`commit`](MemStore::commit) inserts or overwrites a
/// token's data and absolute expiry, [`find`](MemStore::find) returns live data,
/// [`delete`](MemStore::delete) removes it, [`all`](MemStore::all) lists every live session,
/// and a background thread reclaims expired sessions every interval. Expired sessions are
/// never returned, whether or not cleanup has reached them yet.
///
/// Reads take no lock and write no shared memory; cleanup costs O(expired), never a scan of
/// live sessions. Dropping the store stops and joins its cleanup thread.
///
/// ```
/// use memstore::MemStore;
/// use std::time::{Duration, SystemTime};
///
/// let store = MemStore::new();
/// let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
/// store.commit("token", b"data".to_vec(), expiry)?;
/// assert_eq!(store.find("token").as_deref(), Some(&b"data"[..]));
/// store.delete("token");
/// assert_eq!(store.find("token"), None);
/// # Ok::<(), memstore::Error>(())
/// ```
pub struct MemStore {
    pub(crate) inner: Arc<Inner>,
    cleaner: Option<Cleaner>,
    /// The periodic snapshot thread ([`Builder::snapshot_every`]); dropping it joins it.
    pub(crate) snapshots: Option<crate::snapshot::Periodic>,
}

/// What the store and its cleanup thread share.
pub(crate) struct Inner {
    pub(crate) shards: Box<[CachePadded<Shard>]>,
    shift: u32,
    hasher: RandomState,
    /// Tests only: every token hashes to the same value (all keys collide).
    collide: bool,
    pub(crate) clock: StoreClock,
    pub(crate) max_token_len: usize,
    pub(crate) max_data_len: usize,
    token_index: TokenIndex,
    /// Store-wide sessions and bytes; `Some` only when a bound is set.
    pub(crate) usage: Option<std::sync::Arc<Usage>>,
    max_sessions: usize,
    max_bytes: usize,
    when_full: WhenFull,
    passes: StatU64,
    reclaimed: StatU64,
    rescheduled: StatU64,
    stale: StatU64,
    evicted: StatU64,
    cleanup_panics: StatU64,
    reads: ReadStats,
}

/// Read counters striped by thread: each thread bumps its own cache line (no counter shared
/// by all readers), summed on demand by [`MemStore::stats`].
struct ReadStats {
    stripes: Box<[CachePadded<ReadStripe>]>,
}

#[derive(Default)]
struct ReadStripe {
    hits: StatU64,
    misses: StatU64,
    expired: StatU64,
}

impl ReadStats {
    fn new() -> Self {
        let n =
            (std::thread::available_parallelism().map_or(4, |n| n.get()) * 2).next_power_of_two();
        ReadStats {
            stripes: (0..n)
                .map(|_| CachePadded::new(ReadStripe::default()))
                .collect(),
        }
    }

    #[inline]
    fn record<T>(&self, r: &Result<T, Miss>) {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            };
        }
        let i = STRIPE.try_with(|s| *s).unwrap_or(0) & (self.stripes.len() - 1);
        let stripe = &self.stripes[i];
        let counter = match r {
            Ok(_) => &stripe.hits,
            Err(Miss::Absent) => &stripe.misses,
            Err(Miss::Expired) => &stripe.expired,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn sum(&self, f: impl Fn(&ReadStripe) -> &StatU64) -> u64 {
        self.stripes
            .iter()
            .map(|s| f(s).load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}

/// What a bounded store does with a commit that would take it over a bound
/// ([`Builder::max_sessions`], [`Builder::max_bytes`]).
///
/// ```
/// use memstore::{MemStore, WhenFull};
/// let store = MemStore::builder().max_sessions(100_000).when_full(WhenFull::Refuse).build();
/// # drop(store);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Commit, then evict the sessions that expire soonest (the fronts of the expiry
    /// indexes, O(1) to find per shard) until the store is within its bounds again. Never
    /// the session being committed. The default.
    #[default]
    EvictSoonest,
    /// Refuse the commit with [`Error::SessionLimit`] or [`Error::ByteLimit`], after
    /// reclaiming any expired sessions. Overwrites that do not grow the store always succeed.
    Refuse,
}

/// Skiplists that hold a store's token index (split across its shards): a descent
/// costs log2(sessions / TOKEN_SKIPLISTS) levels; each empty skiplist costs ~400 bytes.
const TOKEN_SKIPLISTS: usize = 4096;

impl Inner {
    /// What the bytes bound sees of `sessions` sessions holding `bytes` of tokens and data.
    fn charged(sessions: isize, bytes: isize) -> isize {
        bytes.saturating_add(sessions.saturating_mul(SESSION_OVERHEAD as isize))
    }

    /// Whether the store is over a bound, by the newest counts: read-modify-writes, which
    /// cannot return a value older than the latest (a stale "over" would evict one session
    /// too many). Called only after a cheap load says it may be over.
    fn over(&self, u: &Usage) -> bool {
        let sessions = u.sessions.fetch_add(0, Ordering::AcqRel);
        let bytes = u.bytes.fetch_add(0, Ordering::AcqRel);
        sessions > self.max_sessions as isize
            || Self::charged(sessions, bytes) > self.max_bytes as isize
    }

    fn maybe_over(&self, u: &Usage) -> bool {
        let sessions = u.sessions.load(Ordering::Relaxed);
        sessions > self.max_sessions as isize
            || Self::charged(sessions, u.bytes.load(Ordering::Relaxed)) > self.max_bytes as isize
    }

    /// Whether a session of `size` bytes (token + data) fits where the token holds `held`.
    pub(crate) fn fits(&self, u: &Usage, held: Option<usize>, size: usize) -> Result<(), Error> {
        let sessions = u.sessions.load(Ordering::Relaxed) + isize::from(held.is_none());
        let bytes = u.bytes.load(Ordering::Relaxed) + size as isize - held.unwrap_or(0) as isize;
        if sessions > self.max_sessions as isize {
            Err(Error::SessionLimit {
                max: self.max_sessions,
            })
        } else if Self::charged(sessions, bytes) > self.max_bytes as isize {
            Err(Error::ByteLimit {
                max: self.max_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Admission under the store's bounds, before a commit-like write of a session that will
    /// hold `size` bytes (token + data). A session that could never fit alone is refused
    /// whatever the policy. Refuse: checks against what the token holds now, reclaiming
    /// expired sessions once if that would make room. Evict: admits; the caller runs
    /// [`evict`](Self::evict) after the write.
    fn admit(
        &self,
        shard: &Shard,
        probe: &Probe<'_>,
        size: usize,
        now: u64,
        guard: &sync::Guard,
    ) -> Result<(), Error> {
        let Some(u) = &self.usage else {
            return Ok(());
        };
        if Self::charged(1, size as isize) > self.max_bytes as isize {
            return Err(Error::ByteLimit {
                max: self.max_bytes,
            });
        }
        if self.when_full == WhenFull::Refuse {
            let held = shard.held_size(probe, guard);
            let grows = held.is_none_or(|h| size > h);
            if grows && self.fits(u, held, size).is_err() {
                self.sweep(now); // expired sessions make room first, maybe the token's own
                self.fits(u, shard.held_size(probe, guard), size)?;
            }
        }
        Ok(())
    }

    /// After a write under [`WhenFull::EvictSoonest`]: evicts the soonest-expiring sessions
    /// of other tokens until the store is within its bounds again. Each pop reclaims a
    /// session, reschedules an extended one's entry (once per extension) or drops a stale
    /// entry, so the loop ends. Concurrent commits may overshoot by what they add between
    /// their write and their eviction: at most one session, and one session's bytes, per
    /// thread in flight.
    fn evict(&self, keep: &Probe<'_>, guard: &sync::Guard) {
        let Some(u) = &self.usage else { return };
        if self.when_full != WhenFull::EvictSoonest {
            return;
        }
        while self.maybe_over(u) && self.over(u) {
            let soonest = self
                .shards
                .iter()
                .filter_map(|s| s.front_deadline(keep, guard).map(|d| (d, &**s)))
                .min_by_key(|(d, _)| *d);
            let Some((_, s)) = soonest else { break };
            if let Some(swept) = s.evict_front(keep, guard) {
                self.evicted
                    .fetch_add(swept.reclaimed, std::sync::atomic::Ordering::Relaxed);
                self.stale
                    .fetch_add(swept.stale, std::sync::atomic::Ordering::Relaxed);
                self.rescheduled
                    .fetch_add(swept.rescheduled, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The keyed hash of `token`: orders the token index, and its top bits pick the shard.
    #[inline]
    fn hash(&self, token: &str) -> u64 {
        // `collide` is only ever set with the `test-hooks` feature: other builds drop the
        // branch.
        if cfg!(feature = "test-hooks") && self.collide {
            0
        } else {
            self.hasher.hash_one(token)
        }
    }

    /// The shard of `hash`: its top bits, so shards follow one another in key order.
    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        if self.shift >= 64 {
            0
        } else {
            (hash >> self.shift) as usize
        }
    }

    #[inline]
    fn route<'t>(&self, token: &'t str) -> (&Shard, Probe<'t>) {
        let hash = self.hash(token);
        (&self.shards[self.shard_index(hash)], Probe { hash, token })
    }

    /// Counts a cleanup pass that panicked ([`Stats::cleanup_panics`]).
    pub(crate) fn note_cleanup_panic(&self) {
        self.cleanup_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// One cleanup pass over every shard at `now`.
    pub(crate) fn sweep(&self, now: u64) -> Swept {
        let guard = sync::pin();
        let mut total = Swept::default();
        for shard in self.shards.iter() {
            total.add(shard.sweep(now, &guard));
        }
        drop(guard);
        // The pass retired a version and an expiry entry per reclaimed session; free them
        // here rather than leave them to whichever reader's pin happens to collect next.
        sync::collect_retired(2 * (total.reclaimed + total.stale + total.rescheduled));
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.reclaimed.fetch_add(total.reclaimed, Ordering::Relaxed);
        self.rescheduled
            .fetch_add(total.rescheduled, Ordering::Relaxed);
        self.stale.fetch_add(total.stale, Ordering::Relaxed);
        total
    }
}

impl MemStore {
    /// A store with a cleanup pass every minute ([`DEFAULT_CLEANUP_INTERVAL`]), like scs's
    /// `New()`.
    ///
    /// # Panics
    /// If the operating system cannot start the cleanup thread; [`Builder::try_build`]
    /// returns that error instead.
    ///
    /// ```
    /// let store = memstore::MemStore::new();
    /// assert!(store.is_empty());
    /// ```
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// A store with a cleanup pass every `interval`; [`Duration::ZERO`] starts no cleanup
    /// thread (expired sessions are still never returned, and [`cleanup_now`](Self::cleanup_now)
    /// reclaims them). Like scs's `NewWithCleanupInterval`.
    ///
    /// # Panics
    /// As [`MemStore::new`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = memstore::MemStore::with_cleanup_interval(Duration::ZERO);
    /// assert_eq!(store.stats().cleanup_passes, 0);
    /// ```
    pub fn with_cleanup_interval(interval: Duration) -> Self {
        Builder::new().cleanup_interval(interval).build()
    }

    /// A [`Builder`] for the clock, shard count, limits and cleanup interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = memstore::MemStore::builder()
    ///     .cleanup_interval(Duration::from_secs(10))
    ///     .max_data_len(64 * 1024)
    ///     .build();
    /// # drop(store);
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Inserts `token`'s session, or overwrites its data and expiry.
    ///
    /// `data` is anything that converts into [`Bytes`] without copying (`Vec<u8>`, `String`,
    /// `Bytes`, `&'static [u8]`); a caller holding a borrowed `&[u8]` passes `slice.to_vec()`
    /// or `Bytes::copy_from_slice(slice)`. `expiry` is an absolute wall-clock time.
    ///
    /// An `expiry` at or before now (by the store's clock) deletes the session and returns
    /// `Ok(())`: the session is over, as scs's `Find` would report for it.
    ///
    /// # Errors
    /// [`Error::EmptyToken`], [`Error::TokenTooLong`], [`Error::DataTooLarge`] and
    /// [`Error::ExpiryOutOfRange`]; the store is unchanged.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "first", later)?;
    /// store.commit("t", b"second".to_vec(), later)?;
    /// assert_eq!(store.find("t").as_deref(), Some(&b"second"[..]));
    /// store.commit("t", "gone", SystemTime::UNIX_EPOCH)?; // in the past: a delete
    /// assert_eq!(store.find("t"), None);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn commit(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<(), Error> {
        let data = data.into();
        let deadline = self.check_commit(token, &data, expiry)?;
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        if deadline <= now {
            shard.delete(&probe, &guard);
            return Ok(());
        }
        self.inner
            .admit(shard, &probe, token.len() + data.len(), now, &guard)?;
        shard.commit(&probe, data, deadline, &guard);
        self.inner.evict(&probe, &guard);
        Ok(())
    }

    /// Inserts `token`'s session only if no live session holds it: an atomic
    /// insert-if-absent. Returns `Ok(true)` if this call inserted it, `Ok(false)` (and leaves
    /// the store unchanged) if a live session holds the token.
    ///
    /// Of any number of concurrent `commit_new` calls for one token, exactly one returns
    /// `true`. An expired session that cleanup has not reclaimed yet counts as absent: it is
    /// taken over. This is what session middleware needs to create a session under a freshly
    /// drawn id without a check-then-insert race.
    ///
    /// An `expiry` at or before now inserts nothing (the session would be over at once, as
    /// with [`commit`](Self::commit)) and returns whether the token was free.
    ///
    /// # Errors
    /// As [`commit`](Self::commit); the store is unchanged.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// assert_eq!(store.commit_new("t", "first", later), Ok(true));
    /// assert_eq!(store.commit_new("t", "second", later), Ok(false)); // taken
    /// assert_eq!(store.find("t").as_deref(), Some(&b"first"[..]));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn commit_new(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, Error> {
        let data = data.into();
        let deadline = self.check_commit(token, &data, expiry)?;
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        if deadline <= now {
            return Ok(shard.find(&probe, || now, &guard).is_err());
        }
        self.inner
            .admit(shard, &probe, token.len() + data.len(), now, &guard)?;
        let inserted = shard.commit_new(&probe, data, deadline, now, &guard);
        self.inner.evict(&probe, &guard);
        Ok(inserted)
    }

    /// Overwrites `token`'s session only if a live session holds it (redis's `SET XX`):
    /// `Ok(true)` if it did, `Ok(false)` (store unchanged) if the token is missing or expired.
    ///
    /// Unlike [`commit`](Self::commit) it never creates a session, so a request that saves a
    /// session another request has just deleted (a logout) does not bring it back.
    /// An `expiry` at or before now deletes a live session (and returns `Ok(true)`).
    ///
    /// # Errors
    /// As [`commit`](Self::commit); the store is unchanged.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// assert_eq!(store.commit_existing("t", "x", later), Ok(false)); // nothing to update
    /// store.commit("t", "x", later)?;
    /// assert_eq!(store.commit_existing("t", "y", later), Ok(true));
    /// assert_eq!(store.find("t").as_deref(), Some(&b"y"[..]));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn commit_existing(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, Error> {
        let data = data.into();
        let deadline = self.check_commit(token, &data, expiry)?;
        self.replace_live(token, Some(data), deadline)
    }

    /// Moves a live session's expiry to `expiry`, keeping its data (memcached's `touch`,
    /// redis's `EXPIRE`): `Ok(true)` if it did, `Ok(false)` if the token is missing or
    /// expired. A commit that races the touch is never undone: the touch keeps the data of
    /// whichever version it replaces. An `expiry` at or before now deletes a live session.
    ///
    /// # Errors
    /// [`Error::EmptyToken`], [`Error::TokenTooLong`] and [`Error::ExpiryOutOfRange`].
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let soon = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "x", soon)?;
    /// let later = soon + Duration::from_secs(3600);
    /// assert_eq!(store.touch("t", later), Ok(true));
    /// assert_eq!(store.find("t").as_deref(), Some(&b"x"[..]));
    /// assert_eq!(store.touch("missing", later), Ok(false));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn touch(&self, token: &str, expiry: SystemTime) -> Result<bool, Error> {
        self.check_token(token)?;
        let deadline = clock::to_nanos(expiry).ok_or(Error::ExpiryOutOfRange)?;
        self.replace_live(token, None, deadline)
    }

    fn replace_live(&self, token: &str, data: Option<Bytes>, deadline: u64) -> Result<bool, Error> {
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        if deadline <= now {
            if shard.find(&probe, || now, &guard).is_err() {
                return Ok(false);
            }
            return Ok(shard.delete(&probe, &guard));
        }
        match data {
            // A touch keeps the data: it never grows the store.
            None => Ok(shard.replace_live(&probe, None, deadline, now, &guard)),
            Some(data) => {
                self.inner
                    .admit(shard, &probe, token.len() + data.len(), now, &guard)?;
                let replaced = shard.replace_live(&probe, Some(data), deadline, now, &guard);
                self.inner.evict(&probe, &guard);
                Ok(replaced)
            }
        }
    }

    /// Validates a commit's input; the deadline in nanoseconds.
    fn check_commit(&self, token: &str, data: &Bytes, expiry: SystemTime) -> Result<u64, Error> {
        self.check_token(token)?;
        if data.len() > self.inner.max_data_len {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max: self.inner.max_data_len,
            });
        }
        clock::to_nanos(expiry).ok_or(Error::ExpiryOutOfRange)
    }

    fn check_token(&self, token: &str) -> Result<(), Error> {
        if token.is_empty() {
            return Err(Error::EmptyToken);
        }
        if token.len() > self.inner.max_token_len {
            return Err(Error::TokenTooLong {
                len: token.len(),
                max: self.inner.max_token_len,
            });
        }
        Ok(())
    }

    /// `token`'s data, or `None` when it is missing or expired. Data up to
    /// [`FIND_COPY_LIMIT`] bytes (a typical session) comes back as a fresh copy, which writes
    /// no memory that other threads read: sharing a reference count would make every reader
    /// of a hot session write one cache line. Larger data shares the stored buffer (a
    /// reference count, no copy). [`find_with`](Self::find_with) reads in place, with no
    /// copy at all.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// assert_eq!(store.find("nobody"), None);
    /// store.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(&store.find("t").unwrap()[..], b"x");
    /// # Ok::<(), memstore::Error>(())
    /// ```
    #[inline]
    pub fn find(&self, token: &str) -> Option<Bytes> {
        self.find_with_inner(token, Version::to_bytes)
    }

    /// Calls `f` with `token`'s live data, borrowed in place: no lock, no copy, no reference
    /// count, no write to shared memory. `None` when missing or expired. Keep `f` short: while
    /// it runs, this thread holds back memory reclamation (an epoch pin).
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("t", "hello", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.find_with("t", |data| data.len()), Some(5));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    #[inline]
    pub fn find_with<R>(&self, token: &str, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.find_with_inner(token, |v| f(v.data()))
    }

    #[inline]
    fn find_with_inner<R>(&self, token: &str, f: impl FnOnce(&Version) -> R) -> Option<R> {
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        let found = shard.find(&probe, || self.inner.clock.now_nanos(), &guard);
        self.inner.reads.record(&found);
        found.ok().map(f)
    }

    /// The session's expiry, or `None` when missing or expired.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let store = MemStore::new();
    /// let expiry = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
    /// store.commit("t", "x", expiry)?;
    /// assert_eq!(store.expiry("t"), Some(expiry));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn expiry(&self, token: &str) -> Option<SystemTime> {
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        shard
            .find(&probe, || now, &guard)
            .ok()
            .map(|v| clock::from_nanos(v.deadline))
    }

    /// The current time by the store's clock: what expiries are compared with. Adapters that
    /// are given a time-to-live (actix-session) add it to this.
    ///
    /// ```
    /// use memstore::{ManualClock, MemStore};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let t = UNIX_EPOCH + Duration::from_secs(1_000);
    /// let store = MemStore::builder().clock(ManualClock::new(t)).build();
    /// assert_eq!(store.now(), t);
    /// ```
    pub fn now(&self) -> SystemTime {
        clock::from_nanos(self.inner.clock.now_nanos())
    }

    /// Removes `token`'s session. A missing token is a no-op.
    ///
    /// ```
    /// use memstore::MemStore;
    /// let store = MemStore::new();
    /// store.delete("never-existed"); // no-op
    /// ```
    pub fn delete(&self, token: &str) {
        if self.check_token(token).is_err() {
            return; // no such session can exist
        }
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        shard.delete(&probe, &guard);
    }

    /// Every live session, token to data (a fresh map; empty, never absent, when there are
    /// none). Sessions committed or deleted while it runs may or may not appear.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// assert!(store.all().is_empty());
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.all().len(), 1);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn all(&self) -> HashMap<String, Bytes> {
        self.iter().collect()
    }

    /// An iterator over every live session, in the store's key order (a keyed hash of the
    /// token, so the order says nothing about the tokens). It copies a few sessions at a time
    /// and holds no guard across `next` calls, so it never blocks writers or cleanup; with the
    /// default skiplist token index it needs O(1) extra memory (the hash index collects a
    /// shard at a time).
    ///
    /// Not a snapshot: a session committed or deleted during the walk may or may not be
    /// seen; every session live for the whole walk is seen exactly once.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// let tokens: Vec<String> = store.iter().map(|(token, _)| token).collect();
    /// assert_eq!(tokens, ["a"]);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(&Cursor::default())
    }

    /// An iterator over the live sessions after `cursor` in the store's key order: resumes a
    /// walk (an admin page, an export) where it stopped, while sessions come and go.
    ///
    /// A walk that goes page by page, each page starting from
    /// [`cursor_after`](Self::cursor_after) the last token of the page before, sees every
    /// session that is live for the whole walk exactly once, and never yields a token twice
    /// (the key order is fixed for a store's life). A session committed or deleted during the
    /// walk may or may not be seen. A cursor is only meaningful for the store that made it.
    ///
    /// ```
    /// use memstore::{Cursor, MemStore};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let expiry = SystemTime::now() + Duration::from_secs(60);
    /// for i in 0..250 {
    ///     store.commit(&format!("token-{i}"), "data", expiry)?;
    /// }
    /// let (mut cursor, mut seen) = (Cursor::default(), 0);
    /// loop {
    ///     let page: Vec<_> = store.iter_from(&cursor).take(100).collect();
    ///     let Some((last, _)) = page.last() else { break };
    ///     cursor = store.cursor_after(last);
    ///     seen += page.len();
    /// }
    /// assert_eq!(seen, 250);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn iter_from(&self, cursor: &Cursor) -> Iter<'_> {
        let (shard, after) = match &cursor.0 {
            None => (0, None),
            Some((hash, token)) => (self.inner.shard_index(*hash), Some((*hash, token.clone()))),
        };
        Iter {
            store: self,
            shard,
            after,
            batch: std::collections::VecDeque::new(),
        }
    }

    /// The position just after `token` in the store's key order, whether or not a session
    /// holds it: [`iter_from`](Self::iter_from) resumes there.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.iter_from(&store.cursor_after("a")).count(), 0);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn cursor_after(&self, token: &str) -> Cursor {
        Cursor(Some((self.inner.hash(token), token.into())))
    }

    /// Sessions held, including expired ones that cleanup has not reclaimed yet.
    ///
    /// A bounded store reads its one store-wide count (the one its bounds are kept by), so
    /// under concurrent commits it never shows more than the bound's documented overshoot.
    /// An unbounded store keeps no shared count (it would be a contended line on every
    /// fresh commit): it sums its shards' counts, O(shards), exact when no write is in flight
    /// and off by the writes in flight otherwise.
    ///
    /// ```
    /// let store = memstore::MemStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        match &self.inner.usage {
            // The shards' counts, read one after another, can add a session evicted from a
            // shard already read to one committed into a shard read later.
            Some(u) => usize::try_from(u.sessions.load(Ordering::Relaxed)).unwrap_or(0),
            None => self.inner.shards.iter().map(|s| s.len()).sum(),
        }
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// ```
    /// assert!(memstore::MemStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs one cleanup pass now, on this thread, and returns how many expired sessions it
    /// reclaimed. For users who drive cleanup themselves (with the thread off or on: passes
    /// may run concurrently).
    ///
    /// ```
    /// use memstore::{Clock, ManualClock, MemStore};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    /// let store = MemStore::builder()
    ///     .clock(clock.clone())
    ///     .cleanup_interval(Duration::ZERO)
    ///     .build();
    /// store.commit("t", "x", clock.now() + Duration::from_secs(10))?;
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(store.cleanup_now(), 1);
    /// assert!(store.is_empty());
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn cleanup_now(&self) -> usize {
        let now = self.inner.clock.now_nanos();
        usize::try_from(self.inner.sweep(now).reclaimed).unwrap_or(usize::MAX)
    }

    /// Stops the cleanup thread and returns once it has exited. Idempotent, and safe at any
    /// time: before the first pass, during one (it waits for the pass to end) or after a
    /// previous stop. [`Drop`] does the same.
    ///
    /// ```
    /// let store = memstore::MemStore::new();
    /// store.stop_cleanup();
    /// store.stop_cleanup(); // no-op
    /// ```
    pub fn stop_cleanup(&self) {
        if let Some(c) = &self.cleaner {
            c.stop();
        }
    }

    /// Counters and sizes, summed on demand.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// let stats = store.stats();
    /// assert_eq!((stats.sessions, stats.expiry_entries), (1, 1));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        Stats {
            sessions: self.len(),
            expiry_entries: i.shards.iter().map(|s| s.expiry_len()).sum(),
            shards: i.shards.len(),
            token_index: i.token_index,
            cleanup_passes: i.passes.load(Ordering::Relaxed),
            reclaimed: i.reclaimed.load(Ordering::Relaxed),
            rescheduled: i.rescheduled.load(Ordering::Relaxed),
            stale_dropped: i.stale.load(Ordering::Relaxed),
            evicted: i.evicted.load(Ordering::Relaxed),
            cleanup_panics: i.cleanup_panics.load(Ordering::Relaxed),
            bytes: usize::try_from(i.shards.iter().map(|s| s.bytes()).sum::<i64>()).unwrap_or(0),
            hits: i.reads.sum(|s| &s.hits),
            misses: i.reads.sum(|s| &s.misses),
            expired_on_read: i.reads.sum(|s| &s.expired),
        }
    }

    /// A weak handle that dies once the cleanup thread has exited and the store is gone; for
    /// tests that check no thread outlives the store (feature `test-hooks`, not for users).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn cleanup_handle_for_tests(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        match &self.cleaner {
            Some(c) => c.probe(),
            None => std::sync::Weak::<()>::new(),
        }
    }

    /// Checks the store's structural invariants (DESIGN.md's I2 and I5). Only meaningful when
    /// no operation is in flight; for tests and model checking (feature `test-hooks`, not for
    /// users). Returns the number of stale expiry entries.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<usize, String> {
        let guard = sync::pin();
        let mut stale = 0;
        for s in self.inner.shards.iter() {
            stale += s.check_quiescent(&guard)?;
        }
        Ok(stale)
    }

    /// The error [`commit`](Self::commit) would return for this input, without writing
    /// anything: the token, the data's length and the expiry against this store's limits (an
    /// expiry in the past is not an error). For a layer that must validate before writing
    /// elsewhere first (the Redis near-cache writes Redis, then this store).
    ///
    /// # Errors
    /// [`Error::EmptyToken`], [`Error::TokenTooLong`], [`Error::DataTooLarge`] and
    /// [`Error::ExpiryOutOfRange`].
    ///
    /// ```
    /// use memstore::{Error, MemStore};
    /// use std::time::SystemTime;
    ///
    /// let store = MemStore::builder().max_data_len(4).build();
    /// assert_eq!(store.check_input("t", 4, SystemTime::now()), Ok(()));
    /// assert_eq!(
    ///     store.check_input("t", 5, SystemTime::now()),
    ///     Err(Error::DataTooLarge { len: 5, max: 4 })
    /// );
    /// assert_eq!(store.check_input("", 0, SystemTime::now()), Err(Error::EmptyToken));
    /// ```
    pub fn check_input(
        &self,
        token: &str,
        data_len: usize,
        expiry: SystemTime,
    ) -> Result<(), Error> {
        self.check_token(token)?;
        if data_len > self.inner.max_data_len {
            return Err(Error::DataTooLarge {
                len: data_len,
                max: self.inner.max_data_len,
            });
        }
        clock::to_nanos(expiry)
            .map(drop)
            .ok_or(Error::ExpiryOutOfRange)
    }
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl Drop for MemStore {
    fn drop(&mut self) {
        self.stop_cleanup();
    }
}

impl fmt::Debug for MemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStore")
            .field("sessions", &self.len())
            .field("shards", &self.inner.shards.len())
            .field("cleanup_thread", &self.cleaner.is_some())
            .finish_non_exhaustive()
    }
}

/// Counters and sizes of a [`MemStore`], from [`MemStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions held, expired ones not yet reclaimed included ([`MemStore::len`]).
    pub sessions: usize,
    /// Entries in the expiry index: one per session plus stale ones (left by deadline
    /// shortening and by races), each dropped when cleanup reaches its deadline.
    pub expiry_entries: usize,
    /// The number of shards.
    pub shards: usize,
    /// The token index's structure.
    pub token_index: TokenIndex,
    /// Cleanup passes run (by the thread and by [`MemStore::cleanup_now`]).
    pub cleanup_passes: u64,
    /// Expired sessions reclaimed by cleanup.
    pub reclaimed: u64,
    /// Expiry entries that came due for a session whose deadline had moved later: refiled.
    pub rescheduled: u64,
    /// Stale expiry entries dropped by cleanup (and eviction).
    pub stale_dropped: u64,
    /// Sessions evicted to keep a bounded store within its bounds.
    pub evicted: u64,
    /// Passes of the cleanup thread that panicked (a bug, or a custom [`Clock`] that
    /// panics). The thread catches the panic and goes on: the next pass runs on time.
    pub cleanup_panics: u64,
    /// Bytes held: tokens plus data of every session held.
    pub bytes: usize,
    /// Reads (`find`, `find_with`) that returned a session.
    pub hits: u64,
    /// Reads of tokens that hold no session.
    pub misses: u64,
    /// Reads of sessions whose expiry had passed (not returned; cleanup had not reclaimed
    /// them yet).
    pub expired_on_read: u64,
}

/// Sessions an [`Iter`] copies per pin (skiplist token index): bounds how long it holds a
/// guard and how much it buffers.
const ITER_BATCH: usize = 64;

/// An iterator over a store's live sessions, from [`MemStore::iter`] or
/// [`MemStore::iter_from`].
pub struct Iter<'a> {
    store: &'a MemStore,
    /// The shard being walked.
    shard: usize,
    /// The key of the last session copied from `shard`.
    after: Option<(u64, Box<str>)>,
    batch: std::collections::VecDeque<(String, Bytes)>,
}

impl Iterator for Iter<'_> {
    type Item = (String, Bytes);

    fn next(&mut self) -> Option<(String, Bytes)> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                return Some(item);
            }
            let inner = &self.store.inner;
            let shard = inner.shards.get(self.shard)?;
            let limit = shard.walk_batch(ITER_BATCH);
            let now = inner.clock.now_nanos();
            let guard = sync::pin();
            let mut last = 0;
            let after = self.after.as_ref().map(|(h, t)| (*h, t.as_bytes()));
            let batch = &mut self.batch;
            shard.walk_live(after, now, &guard, |hash, token, v| {
                batch.push_back((token.to_owned(), v.to_bytes()));
                last = hash;
                batch.len() < limit
            });
            self.after = match self.batch.back() {
                Some((token, _)) if self.batch.len() >= limit => {
                    Some((last, token.as_str().into()))
                }
                _ => {
                    self.shard += 1; // the shard is done
                    None
                }
            };
        }
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

/// A position in a store's key order, from which [`MemStore::iter_from`] resumes a walk:
/// [`Cursor::default`] is the start, [`MemStore::cursor_after`] the position after a token.
///
/// It holds the token it was made from, a bearer credential: keep it on the server (its
/// `Debug` shows no token).
///
/// ```
/// use memstore::{Cursor, MemStore};
/// let store = MemStore::new();
/// assert_eq!(store.iter_from(&Cursor::default()).count(), 0);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cursor(Option<(u64, Box<str>)>);

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Cursor(start)"),
            Some((hash, _)) => write!(f, "Cursor(after {hash:#018x})"),
        }
    }
}

/// Configures and builds a [`MemStore`].
///
/// ```
/// use memstore::{ManualClock, MemStore};
/// use std::time::{Duration, SystemTime};
///
/// let store = MemStore::builder()
///     .cleanup_interval(Duration::from_secs(30))
///     .clock(ManualClock::new(SystemTime::now()))
///     .shards(16)
///     .max_token_len(64)
///     .max_data_len(4096)
///     .build();
/// assert_eq!(store.stats().shards, 16);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    interval: Duration,
    clock: StoreClock,
    shards: Option<usize>,
    max_token_len: usize,
    max_data_len: usize,
    max_sessions: Option<usize>,
    max_bytes: Option<usize>,
    when_full: WhenFull,
    token_index: TokenIndex,
    collide: bool,
    /// [`snapshot_every`](Self::snapshot_every): the interval and the file.
    pub(crate) snapshot: Option<(Duration, std::path::PathBuf)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: cleanup every minute, the system clock, shards by core count,
    /// [`DEFAULT_MAX_TOKEN_LEN`] and [`DEFAULT_MAX_DATA_LEN`].
    pub fn new() -> Self {
        Builder {
            interval: DEFAULT_CLEANUP_INTERVAL,
            clock: StoreClock::System,
            shards: None,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            max_data_len: DEFAULT_MAX_DATA_LEN,
            max_sessions: None,
            max_bytes: None,
            when_full: WhenFull::EvictSoonest,
            token_index: TokenIndex::SkipList,
            collide: false,
            snapshot: None,
        }
    }

    /// How often the cleanup thread runs; [`Duration::ZERO`] starts no thread.
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The clock that decides what has expired, and paces the cleanup thread.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = StoreClock::Custom(std::sync::Arc::new(clock));
        self
    }

    /// The number of shards, rounded up to a power of two (at least 1, at most 4096). The
    /// default is four times the available parallelism, rounded up.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// The longest token accepted, in bytes ([`DEFAULT_MAX_TOKEN_LEN`] by default).
    pub fn max_token_len(mut self, n: usize) -> Self {
        self.max_token_len = n;
        self
    }

    /// The largest session data accepted, in bytes ([`DEFAULT_MAX_DATA_LEN`] by default).
    pub fn max_data_len(mut self, n: usize) -> Self {
        self.max_data_len = n;
        self
    }

    /// Bounds the number of sessions held (expired ones not yet reclaimed count: they hold
    /// memory). Over the bound, the store does what [`when_full`](Self::when_full) says.
    /// Unbounded by default. A bounded store keeps two store-wide counters, updated by
    /// commits that add or remove sessions or change their size.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::builder().max_sessions(2).build();
    /// let now = SystemTime::now();
    /// store.commit("a", "1", now + Duration::from_secs(10))?;
    /// store.commit("b", "2", now + Duration::from_secs(20))?;
    /// store.commit("c", "3", now + Duration::from_secs(30))?; // evicts "a", the soonest
    /// assert_eq!(store.find("a"), None);
    /// assert_eq!(store.len(), 2);
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n.min(usize::MAX >> 1));
        self
    }

    /// Bounds the memory held: the tokens and data of every session held, plus
    /// [`SESSION_OVERHEAD`] per session (its node, version header and index entries), so a
    /// flood of tiny sessions is bounded too. Over the bound, the store does what
    /// [`when_full`](Self::when_full) says; a session that could not fit alone is refused
    /// with [`Error::ByteLimit`] under either policy. Unbounded by default.
    ///
    /// ```
    /// use memstore::{Error, MemStore, WhenFull, SESSION_OVERHEAD};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let max = 2 * SESSION_OVERHEAD + 20;
    /// let store = MemStore::builder().max_bytes(max).when_full(WhenFull::Refuse).build();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "12345678", later)?; // 1 + 8 bytes + the overhead
    /// store.commit("u", "12", later)?; // 1 + 2 bytes + the overhead: 12 bytes + 2 overheads
    /// assert_eq!(store.commit("v", "", later), Err(Error::ByteLimit { max }));
    /// # Ok::<(), memstore::Error>(())
    /// ```
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = Some(n.min(usize::MAX >> 1));
        self
    }

    /// What a commit that would take the store over a bound does: evict the sessions that
    /// expire soonest (the default) or fail with a typed error.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Tests only: makes every token hash alike, so that every look-up walks colliding keys.
    /// Correct but slow; never use it outside tests.
    /// The token index's structure ([`TokenIndex`]): the default skiplist, or (feature
    /// `hash-index`) scc's hash index for the fastest point reads.
    ///
    /// ```
    /// use memstore::{MemStore, TokenIndex};
    /// let store = MemStore::builder().token_index(TokenIndex::SkipList).build();
    /// assert_eq!(store.stats().token_index, TokenIndex::SkipList);
    /// ```
    pub fn token_index(mut self, index: TokenIndex) -> Self {
        self.token_index = index;
        self
    }

    /// Every token hashes alike, so every look-up walks colliding keys by token (feature
    /// `test-hooks`, not for users).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn all_tokens_collide_for_tests(mut self) -> Self {
        self.collide = true;
        self
    }

    /// Builds the store and starts its cleanup thread (unless the interval is zero).
    ///
    /// # Panics
    /// If the operating system cannot start the thread; see [`try_build`](Self::try_build).
    pub fn build(self) -> MemStore {
        match self.try_build() {
            Ok(s) => s,
            Err(e) => panic!("memstore: cannot start the cleanup thread: {e}"),
        }
    }

    /// Builds the store, returning the error if the cleanup thread cannot be started.
    ///
    /// # Errors
    /// The operating system's error from spawning the thread.
    ///
    /// ```
    /// let store = memstore::MemStore::builder().try_build()?;
    /// # drop(store);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_build(self) -> std::io::Result<MemStore> {
        let n = self
            .shards
            .unwrap_or_else(default_shards)
            .clamp(1, 4096)
            .next_power_of_two();
        // Skiplist token indexes per shard: TOKEN_SKIPLISTS in all, so a descent is
        // log2(sessions / TOKEN_SKIPLISTS) levels whatever the shard count.
        let sub_bits = (TOKEN_SKIPLISTS / n).max(1).trailing_zeros();
        let usage = (self.max_sessions.is_some() || self.max_bytes.is_some())
            .then(|| std::sync::Arc::new(Usage::default()));
        let inner = Arc::new(Inner {
            shards: (0..n)
                .map(|_| {
                    CachePadded::new(Shard::new(
                        usage.clone(),
                        self.token_index,
                        n.trailing_zeros(),
                        sub_bits,
                    ))
                })
                .collect(),
            shift: 64 - n.trailing_zeros(),
            hasher: new_hasher(),
            collide: self.collide,
            clock: self.clock,
            max_token_len: self.max_token_len,
            max_data_len: self.max_data_len,
            token_index: self.token_index,
            usage,
            max_sessions: self.max_sessions.unwrap_or(usize::MAX >> 1),
            max_bytes: self.max_bytes.unwrap_or(usize::MAX >> 1),
            when_full: self.when_full,
            passes: StatU64::new(0),
            reclaimed: StatU64::new(0),
            rescheduled: StatU64::new(0),
            stale: StatU64::new(0),
            evicted: StatU64::new(0),
            cleanup_panics: StatU64::new(0),
            reads: ReadStats::new(),
        });
        // The snapshot thread first: if the cleanup thread then fails to start, dropping
        // `snapshots` stops and joins it.
        let snapshots = crate::snapshot::Periodic::start(&inner, self.snapshot)?;
        let cleaner = if self.interval.is_zero() {
            None
        } else {
            Some(Cleaner::start(inner.clone(), self.interval)?)
        };
        Ok(MemStore {
            inner,
            cleaner,
            snapshots,
        })
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

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 4
}
