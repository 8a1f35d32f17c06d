//! [`MemStore`]: the session operations (commit, find, delete, iterate, cleanup), each
//! turning the caller's types into the raw store's and calling it.

use super::iter::{Cursor, Iter};
use super::stats::Stats;
use crate::clock;
use crate::raw::{self, Version};
use crate::sync::Arc;
use crate::ticker::Ticker;
use crate::Error;
use bytes::Bytes;
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

/// An in-memory session store: lock-free with the default token index (see the crate docs
/// for what is and is not).
///
/// The contract is scs `memstore`'s: [`commit`](MemStore::commit) inserts or overwrites a
/// token's data and absolute expiry, [`find`](MemStore::find) returns live data,
/// [`delete`](MemStore::delete) removes it, [`all`](MemStore::all) lists every live session,
/// and a background thread reclaims expired sessions every interval. Expired sessions are
/// never returned, whether or not cleanup has reached them yet.
///
/// Reads take no lock (each bumps a read counter striped by thread); cleanup costs
/// O(expired x log n), never a scan of live sessions. Dropping the store stops and joins its background thread.
///
/// ```
/// use memsession::MemStore;
/// use std::time::{Duration, SystemTime};
///
/// let store = MemStore::new();
/// let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
/// store.commit("token", b"data".to_vec(), expiry)?;
/// assert_eq!(store.find("token").as_deref(), Some(&b"data"[..]));
/// store.delete("token");
/// assert_eq!(store.find("token"), None);
/// # Ok::<(), memsession::Error>(())
/// ```
pub struct MemStore {
    pub(crate) inner: Arc<raw::Store>,
    /// The background work (cleanup passes, periodic snapshots; `ticker.rs`), if any;
    /// dropping it stops and joins it.
    pub(crate) ticker: Option<Ticker>,
    /// [`Builder::name`](crate::Builder::name): names the store in its events and metrics.
    pub(crate) name: std::sync::Arc<str>,
}

impl MemStore {
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "first", later)?;
    /// store.commit("t", b"second".to_vec(), later)?;
    /// assert_eq!(store.find("t").as_deref(), Some(&b"second"[..]));
    /// store.commit("t", "gone", SystemTime::UNIX_EPOCH)?; // in the past: a delete
    /// assert_eq!(store.find("t"), None);
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn commit(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<(), Error> {
        let data = data.into();
        let deadline = self.inner.check(token, data.len(), expiry)?;
        self.inner.commit(token, data, deadline)
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// assert_eq!(store.commit_new("t", "first", later), Ok(true));
    /// assert_eq!(store.commit_new("t", "second", later), Ok(false)); // taken
    /// assert_eq!(store.find("t").as_deref(), Some(&b"first"[..]));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn commit_new(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, Error> {
        let data = data.into();
        let deadline = self.inner.check(token, data.len(), expiry)?;
        self.inner.commit_new(token, data, deadline)
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// assert_eq!(store.commit_existing("t", "x", later), Ok(false)); // nothing to update
    /// store.commit("t", "x", later)?;
    /// assert_eq!(store.commit_existing("t", "y", later), Ok(true));
    /// assert_eq!(store.find("t").as_deref(), Some(&b"y"[..]));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn commit_existing(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, Error> {
        let data = data.into();
        let deadline = self.inner.check(token, data.len(), expiry)?;
        self.inner.replace_live(token, Some(data), deadline)
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let soon = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "x", soon)?;
    /// let later = soon + Duration::from_secs(3600);
    /// assert_eq!(store.touch("t", later), Ok(true));
    /// assert_eq!(store.find("t").as_deref(), Some(&b"x"[..]));
    /// assert_eq!(store.touch("missing", later), Ok(false));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn touch(&self, token: &str, expiry: SystemTime) -> Result<bool, Error> {
        let deadline = self.inner.check(token, 0, expiry)?;
        self.inner.replace_live(token, None, deadline)
    }

    /// `token`'s data, or `None` when it is missing or expired. Data up to
    /// [`FIND_COPY_LIMIT`](crate::FIND_COPY_LIMIT) bytes (a typical session) comes back as a fresh copy, which writes
    /// no memory that other threads read: sharing a reference count would make every reader
    /// of a hot session write one cache line. Larger data shares the stored buffer (a
    /// reference count, no copy). [`find_with`](Self::find_with) reads in place, with no
    /// copy at all.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// assert_eq!(store.find("nobody"), None);
    /// store.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(&store.find("t").unwrap()[..], b"x");
    /// # Ok::<(), memsession::Error>(())
    /// ```
    #[inline]
    pub fn find(&self, token: &str) -> Option<Bytes> {
        self.inner.find_with(token, Version::to_bytes)
    }

    /// Calls `f` with `token`'s live data, borrowed in place: no lock, no copy, no reference
    /// count (only this thread's striped read counter is bumped). `None` when missing or expired. Keep `f` short: while
    /// it runs, this thread holds back memory reclamation (an epoch pin).
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("t", "hello", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.find_with("t", |data| data.len()), Some(5));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    #[inline]
    pub fn find_with<R>(&self, token: &str, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.inner.find_with(token, |v| f(v.data()))
    }

    /// The session's expiry, or `None` when missing or expired.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let store = MemStore::new();
    /// let expiry = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
    /// store.commit("t", "x", expiry)?;
    /// assert_eq!(store.expiry("t"), Some(expiry));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn expiry(&self, token: &str) -> Option<SystemTime> {
        self.inner.deadline(token).map(clock::from_nanos)
    }

    /// The current time by the store's clock: what expiries are compared with. Adapters that
    /// are given a time-to-live (actix-session) add it to this.
    ///
    /// ```
    /// use memsession::{ManualClock, MemStore};
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
    /// use memsession::MemStore;
    /// let store = MemStore::new();
    /// store.delete("never-existed"); // no-op
    /// ```
    pub fn delete(&self, token: &str) {
        if self.inner.check_token(token).is_err() {
            return; // no such session can exist
        }
        self.inner.delete(token);
    }

    /// Deletes every session, live or expired, and returns how many this call removed: what a
    /// node-wide logout or a cache flush needs, without copying any session's data (as a walk
    /// of [`iter`](Self::iter) that deletes each would). Each deletion is a
    /// [`delete`](Self::delete): a session committed while `clear` runs may or may not
    /// survive it; one deleted by another thread meanwhile is not counted.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("a", "1", later)?;
    /// store.commit("b", "2", later)?;
    /// assert_eq!(store.clear(), 2);
    /// assert!(store.is_empty() && store.all().is_empty());
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn clear(&self) -> usize {
        self.inner.clear()
    }

    /// Every live session, token to data (a fresh map; empty, never absent, when there are
    /// none). Sessions committed or deleted while it runs may or may not appear.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// assert!(store.all().is_empty());
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.all().len(), 1);
    /// # Ok::<(), memsession::Error>(())
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// let tokens: Vec<String> = store.iter().map(|(token, _)| token).collect();
    /// assert_eq!(tokens, ["a"]);
    /// # Ok::<(), memsession::Error>(())
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
    /// use memsession::{Cursor, MemStore};
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
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn iter_from(&self, cursor: &Cursor) -> Iter<'_> {
        Iter::new(&self.inner, cursor)
    }

    /// The position just after `token` in the store's key order, whether or not a session
    /// holds it: [`iter_from`](Self::iter_from) resumes there.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("a", "1", SystemTime::now() + Duration::from_secs(60))?;
    /// assert_eq!(store.iter_from(&store.cursor_after("a")).count(), 0);
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn cursor_after(&self, token: &str) -> Cursor {
        Cursor::after(self.inner.hash(token), token)
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
    /// let store = memsession::MemStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// ```
    /// assert!(memsession::MemStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs one cleanup pass now, on this thread, and returns how many expired sessions it
    /// reclaimed. For users who drive cleanup themselves (with the thread off or on: passes
    /// may run concurrently).
    ///
    /// ```
    /// use memsession::{Clock, ManualClock, MemStore};
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
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn cleanup_now(&self) -> usize {
        let now = self.inner.clock.now_nanos();
        usize::try_from(self.inner.sweep(now).reclaimed).unwrap_or(usize::MAX)
    }

    /// Stops background cleanup and returns once no pass runs or can start (the background
    /// thread has exited, unless it still takes periodic snapshots). Idempotent, and safe at
    /// any time: before the first pass, during one (it waits for the pass to end) or after a
    /// previous stop. [`Drop`] stops all background work.
    ///
    /// ```
    /// let store = memsession::MemStore::new();
    /// store.stop_cleanup();
    /// store.stop_cleanup(); // no-op
    /// ```
    pub fn stop_cleanup(&self) {
        if let Some(t) = &self.ticker {
            t.stop_cleanup();
        }
    }

    /// Counters and sizes, summed on demand.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// let stats = store.stats();
    /// assert_eq!((stats.sessions, stats.expiry_entries), (1, 1));
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        Stats::of(&self.inner)
    }

    /// Sets this store's gauges and counters (sessions, bytes, reads, cleanup, snapshots) in
    /// the installed [`metrics`](https://docs.rs/metrics) recorder, labelled `store` with its
    /// [`Builder::name`](crate::Builder::name) (feature `metrics`). The background cleanup pass does too, every
    /// interval; call this before a scrape for the figures of that instant. The names are in
    /// the crate's README ("Logs and metrics").
    ///
    /// ```
    /// let store = memsession::MemStore::builder().name("sessions").build();
    /// store.record_metrics(); // a no-op without a recorder
    /// ```
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        let snapshots = self.ticker.as_ref().and_then(Ticker::snapshot_status);
        crate::metrics_export::record_store(&self.name, &self.inner, snapshots.as_ref());
    }

    /// A weak handle that dies once the background thread has exited and the store is gone;
    /// for tests that check no thread outlives the store (feature `test-hooks`, not for users).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn cleanup_handle_for_tests(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        match &self.ticker {
            Some(t) => t.probe(),
            None => std::sync::Weak::<()>::new(),
        }
    }

    /// Hints left in the hint tables to deleted or reclaimed sessions: only races leave them
    /// (DESIGN.md's H2); for tests and model checking (feature `test-hooks`, not for users).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn dead_hints_for_tests(&self) -> usize {
        self.inner.dead_hints()
    }

    /// Checks the store's structural invariants (DESIGN.md's I2 and I5). Only meaningful when
    /// no operation is in flight; for tests and model checking (feature `test-hooks`, not for
    /// users). Returns the number of stale expiry entries.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<usize, String> {
        self.inner.check_invariants()
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
    /// use memsession::{Error, MemStore};
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
        self.inner.check(token, data_len, expiry).map(drop)
    }
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl Drop for MemStore {
    fn drop(&mut self) {
        if let Some(t) = &self.ticker {
            t.stop();
        }
    }
}

impl fmt::Debug for MemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStore")
            .field("sessions", &self.len())
            .field("shards", &self.inner.shards().len())
            .field(
                "cleanup_thread",
                &self.ticker.as_ref().is_some_and(Ticker::cleans),
            )
            .finish_non_exhaustive()
    }
}
