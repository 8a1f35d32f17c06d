//! The public layer: [`MemStore`], its [`Builder`], [`Iter`] and [`Stats`]. It validates
//! input, pins the epoch, reads the clock and routes each token to its shard; `raw.rs` owns
//! the protocol.

use crate::cleanup::Cleaner;
use crate::clock::{self, Clock, StoreClock};
use crate::raw::{Probe, Shard, Swept};
use crate::sync::{self, Arc, AtomicU64, Ordering};
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
    inner: Arc<Inner>,
    cleaner: Option<Cleaner>,
}

/// What the store and its cleanup thread share.
pub(crate) struct Inner {
    shards: Box<[CachePadded<Shard>]>,
    shift: u32,
    hasher: RandomState,
    pub(crate) clock: StoreClock,
    max_token_len: usize,
    max_data_len: usize,
    passes: AtomicU64,
    reclaimed: AtomicU64,
    rescheduled: AtomicU64,
    stale: AtomicU64,
}

impl Inner {
    #[inline]
    fn route<'t>(&self, token: &'t str) -> (&Shard, Probe<'t>) {
        let hash = self.hasher.hash_one(token);
        // The top bits pick the shard; within a shard keys still order by the whole hash.
        let i = if self.shift >= 64 {
            0
        } else {
            (hash >> self.shift) as usize
        };
        (&self.shards[i], Probe { hash, token })
    }

    /// One cleanup pass over every shard at `now`.
    pub(crate) fn sweep(&self, now: u64) -> Swept {
        let guard = sync::pin();
        let mut total = Swept::default();
        for shard in self.shards.iter() {
            total.add(shard.sweep(now, &guard));
        }
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
        self.check_token(token)?;
        if data.len() > self.inner.max_data_len {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max: self.inner.max_data_len,
            });
        }
        let deadline = clock::to_nanos(expiry).ok_or(Error::ExpiryOutOfRange)?;
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        if deadline <= now {
            shard.delete(&probe, &guard);
        } else {
            shard.commit(&probe, data, deadline, &guard);
        }
        Ok(())
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

    /// `token`'s data, or `None` when it is missing or expired. The [`Bytes`] shares the
    /// stored buffer (a reference count, no copy); see [`find_with`](Self::find_with) for a
    /// read that writes no shared memory at all.
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
        self.find_with_inner(token, |_, b| b.clone())
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
        self.find_with_inner(token, |data, _| f(data))
    }

    #[inline]
    fn find_with_inner<R>(&self, token: &str, f: impl FnOnce(&[u8], &Bytes) -> R) -> Option<R> {
        let now = self.inner.clock.now_nanos();
        let guard = sync::pin();
        let (shard, probe) = self.inner.route(token);
        shard.find(&probe, now, &guard).map(|v| f(&v.data, &v.data))
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
            .find(&probe, now, &guard)
            .map(|v| clock::from_nanos(v.deadline))
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

    /// An iterator over every live session. It copies one shard at a time, so it holds no
    /// guard across `next` calls and never blocks writers or cleanup.
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
        Iter {
            store: self,
            next_shard: 0,
            batch: Vec::new().into_iter(),
        }
    }

    /// Sessions held, including expired ones that cleanup has not reclaimed yet. O(shards).
    ///
    /// ```
    /// let store = memstore::MemStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.len()).sum()
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
            cleanup_passes: i.passes.load(Ordering::Relaxed),
            reclaimed: i.reclaimed.load(Ordering::Relaxed),
            rescheduled: i.rescheduled.load(Ordering::Relaxed),
            stale_dropped: i.stale.load(Ordering::Relaxed),
        }
    }

    /// A weak handle that dies once the cleanup thread has exited and the store is gone; for
    /// tests that check no thread outlives the store.
    #[doc(hidden)]
    pub fn cleanup_handle_for_tests(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        match &self.cleaner {
            Some(c) => c.probe(),
            None => std::sync::Weak::<()>::new(),
        }
    }

    /// Checks the store's structural invariants (DESIGN.md's I2 and I5). Only meaningful when
    /// no operation is in flight; for tests and model checking. Returns the number of stale
    /// expiry entries.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<usize, String> {
        let guard = sync::pin();
        let mut stale = 0;
        for s in self.inner.shards.iter() {
            stale += s.check_quiescent(&guard)?;
        }
        Ok(stale)
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
    /// Cleanup passes run (by the thread and by [`MemStore::cleanup_now`]).
    pub cleanup_passes: u64,
    /// Expired sessions reclaimed by cleanup.
    pub reclaimed: u64,
    /// Expiry entries that came due for a session whose deadline had moved later: refiled.
    pub rescheduled: u64,
    /// Stale expiry entries dropped by cleanup.
    pub stale_dropped: u64,
}

/// An iterator over a store's live sessions, from [`MemStore::iter`].
pub struct Iter<'a> {
    store: &'a MemStore,
    next_shard: usize,
    batch: std::vec::IntoIter<(String, Bytes)>,
}

impl Iterator for Iter<'_> {
    type Item = (String, Bytes);

    fn next(&mut self) -> Option<(String, Bytes)> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            let inner = &self.store.inner;
            let shard = inner.shards.get(self.next_shard)?;
            self.next_shard += 1;
            let now = inner.clock.now_nanos();
            let guard = sync::pin();
            let mut batch = Vec::new();
            shard.for_each_live(now, &guard, |token, v| {
                batch.push((token.to_owned(), v.data.clone()));
            });
            self.batch = batch.into_iter();
        }
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .finish_non_exhaustive()
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
        let inner = Arc::new(Inner {
            shards: (0..n).map(|_| CachePadded::new(Shard::new())).collect(),
            shift: 64 - n.trailing_zeros(),
            hasher: RandomState::new(),
            clock: self.clock,
            max_token_len: self.max_token_len,
            max_data_len: self.max_data_len,
            passes: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            rescheduled: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        });
        let cleaner = if self.interval.is_zero() {
            None
        } else {
            Some(Cleaner::start(inner.clone(), self.interval)?)
        };
        Ok(MemStore { inner, cleaner })
    }
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 4
}
