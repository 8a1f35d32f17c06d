//! memstore as a coherent near-cache in front of Redis (feature `redis`).
//!
//! When one server is not enough, sessions must live in a shared engine; [`NearCache`] keeps
//! the truth in Redis and serves reads from a local [`MemStore`]. Every instance of an app
//! holds its own `NearCache` over the same Redis.
//!
//! - **Writes** go to Redis first, with the session's absolute expiry (`SET key value PXAT ms`),
//!   then to the local store with the same deadline. `delete` is `DEL`, then a local delete.
//! - **Reads** are served from the local store; a local miss reads Redis (`GET` and
//!   `PEXPIRETIME` in one `MULTI`) and fills the local store with Redis's deadline.
//! - **Coherence** is Redis's server-assisted client-side caching: the connection is RESP3 and
//!   runs `CLIENT TRACKING ON BCAST PREFIX <prefix> NOLOOP`, so Redis pushes an invalidation
//!   for every key under the prefix that *another* connection writes (or expires, or evicts),
//!   and the local entry is dropped. The invalidation is applied inside the connection's reader,
//!   before any later reply on that connection is handed out.
//! - **Lost connection**: the local store is emptied at once (invalidations may have been
//!   missed: a fresh, empty tier is swapped in, in O(1)), counted in
//!   [`NearCacheStats::connection_losses`], and a background task reconnects with backoff.
//!   Until it has, operations fail with [`NearCacheError::Disconnected`]; nothing stale is
//!   served.
//! - **Failover**: only a primary is used (`ROLE`). A `READONLY` or `MASTERDOWN` reply, or a
//!   heartbeat that finds the server demoted, counts as a lost connection, and the task
//!   reconnects to the current primary: among the nodes given to
//!   [`NearCacheBuilder::connect_nodes`], or the one Sentinel names
//!   ([`NearCacheBuilder::connect_sentinel`]).
//!
//! # Guarantees
//! - **Read-your-writes** on one instance: after `commit` returns, that instance's `find`
//!   returns the new data (its own write is not echoed back to it: `NOLOOP`), and after
//!   `delete` returns, `None`, even while a read of the old value is in flight.
//! - **Bounded staleness** across instances: a `find` on any instance at time *T* never
//!   returns data that a write acknowledged before *T* − [`max_staleness`] replaced or
//!   deleted. A background heartbeat asks Redis (`ROLE`) every `max_staleness / 4`; because
//!   Redis sends an invalidation before the write's reply, and a later reply after it, a reply
//!   for a heartbeat sent at *t* proves that every write acknowledged before *t* has been
//!   applied locally. The local store serves reads only while the last such proof is younger
//!   than `max_staleness`; otherwise reads go to Redis. A slow heartbeat only lets that lease
//!   lapse; it does not drop the connection. On a healthy connection the real window is the
//!   invalidation's delivery time (well under a millisecond on loopback).
//! - **No stale read after a reconnect or a failover**: the local store is emptied when the
//!   connection is lost and again when tracking is re-established, so a session written or
//!   deleted while an instance was cut off, or lost with a restarted Redis, is read from Redis.
//! - **Races inside one instance** (a fill from Redis racing a write or an invalidation of the
//!   same token) never leave an older value in the local store, not even for an instant: an
//!   operation stores its value locally only if nothing else touched the token's bucket during
//!   its round trip, checked and stored in one step under the bucket's lock (a spurious miss
//!   at worst). Reads take no lock.
//! - **Expiry** is honoured by both tiers: Redis expires the key at the deadline
//!   (milliseconds, by Redis's clock), and the local store never returns a session past its
//!   deadline (by the near-cache's [`Clock`](crate::Clock)); a session Redis still holds but
//!   whose deadline has passed by that clock reads as `None`. Keep the clocks of app servers
//!   and Redis in sync.
//!
//! Deadlines are truncated to whole milliseconds (Redis's resolution) in both tiers, so every
//! instance agrees on them. Bad input (empty or oversized token, oversized data, an expiry past
//! the year 2554) is judged by the local [`MemStore`]'s own checks, before anything is sent.
//!
//! [`max_staleness`]: NearCacheBuilder::max_staleness
//!
//! ```no_run
//! use memstore::redis::NearCache;
//! use std::time::{Duration, SystemTime};
//!
//! # async fn demo() -> Result<(), memstore::redis::NearCacheError> {
//! let a = NearCache::connect("redis://127.0.0.1:6379").await?;
//! let b = NearCache::connect("redis://127.0.0.1:6379").await?; // another app server
//!
//! let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
//! a.commit("token", b"user=42".to_vec(), expiry).await?;
//! assert_eq!(b.find("token").await?.as_deref(), Some(&b"user=42"[..])); // now cached in b
//! a.delete("token").await?; // b's copy is invalidated
//! # Ok(())
//! # }
//! ```

mod builder;
mod coherence;
mod conn;
mod error;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks;
#[cfg(feature = "tower-sessions")]
mod tower;

pub use ::redis::RedisError;
pub use builder::{
    NearCacheBuilder, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_STALENESS, DEFAULT_PREFIX,
    DEFAULT_RESPONSE_TIMEOUT,
};
pub use error::{NearCacheError, NearCacheStats};

use crate::{Bytes, MemStore};
use ::redis::{IntoConnectionInfo, Value};
use coherence::{Step, Tier};
use conn::{lock, Live, Source};
use error::Counters;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCAN_COUNT: usize = 512;

/// What the handles, the heartbeat task and the connection's push handler share.
struct Shared {
    /// The local tier and its conflict tickets (`coherence`).
    tier: Tier,
    /// Where the primary is (`conn`).
    source: Source,
    prefix: String,
    max_staleness: Duration,
    response_timeout: Duration,
    /// The connection to the primary; `None` while reconnecting. Held only for O(1) steps.
    conn: Mutex<Option<Live>>,
    next_gen: AtomicU64,
    /// Monotonic origin of `lease`.
    origin: Instant,
    /// The staleness lease (see `conn`): 1 + nanoseconds since `origin` at which the last
    /// confirmed heartbeat was sent; 0 while disconnected.
    lease: AtomicU64,
    wake: tokio::sync::Notify,
    counters: Counters,
    #[cfg(feature = "test-hooks")]
    hooks: Mutex<Vec<test_hooks::Armed>>,
}

impl Shared {
    fn key(&self, token: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + token.len());
        key.push_str(&self.prefix);
        key.push_str(token);
        key
    }

    /// The local tier's verdict on a token that would be sent to Redis.
    fn check_token(&self, token: &str) -> Result<(), crate::Error> {
        self.tier.local().check_input(token, 0, UNIX_EPOCH)
    }

    /// Validates a write with the local tier's own checks; the whole-millisecond expiry and
    /// deadline, or `None` when the expiry has already passed.
    fn check_write(
        &self,
        token: &str,
        data: &Bytes,
        expiry: SystemTime,
    ) -> Result<Option<(u64, SystemTime)>, NearCacheError> {
        let local = self.tier.local();
        local.check_input(token, data.len(), expiry)?;
        let Ok(since) = expiry.duration_since(UNIX_EPOCH) else {
            return Ok(None); // before the epoch: long past
        };
        // In range: `check_input` accepted it in nanoseconds.
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let deadline = UNIX_EPOCH + Duration::from_millis(ms);
        Ok((deadline > local.now()).then_some((ms, deadline)))
    }

    /// An operation's local step (see [`Tier::settle`]), counting a conflict.
    fn settle(&self, ticket: coherence::Ticket, token: &str, step: Step) {
        if self.tier.settle(ticket, token, step) {
            Counters::bump(&self.counters.conflicts);
        }
    }

    /// An invalidation pushed by Redis, applied in the connection's reader.
    fn invalidate(&self, data: &[Value]) {
        for value in data {
            match value {
                Value::Array(keys) | Value::Set(keys) => {
                    for key in keys {
                        self.invalidate_key(key);
                    }
                }
                Value::Nil => {
                    // FLUSHALL / FLUSHDB
                    self.tier.flush(self.tier.fresh());
                    Counters::bump(&self.counters.flushes);
                }
                key => self.invalidate_key(key),
            }
        }
    }

    fn invalidate_key(&self, key: &Value) {
        let bytes = match key {
            Value::BulkString(b) => b.as_slice(),
            Value::SimpleString(s) => s.as_bytes(),
            _ => return,
        };
        let Some(token) = bytes
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|t| std::str::from_utf8(t).ok())
        else {
            return; // not one of ours (tokens are UTF-8)
        };
        self.tier.invalidate(token);
        Counters::bump(&self.counters.invalidations);
    }

    /// A read (`find`, `expiry`): `local`'s answer from the local tier while the lease holds
    /// and it has one, else `remote`'s from what Redis holds (data and deadline; this fills
    /// the local tier). A token that cannot exist (empty, oversized) is `None`.
    async fn read<T>(
        &self,
        token: &str,
        local: impl FnOnce(&MemStore) -> Option<T>,
        remote: impl FnOnce(Bytes, Option<SystemTime>) -> Option<T>,
    ) -> Result<Option<T>, NearCacheError> {
        if self.leased() {
            if let Some(hit) = local(&self.tier.local()) {
                Counters::bump(&self.counters.local_hits);
                return Ok(Some(hit));
            }
        }
        if self.check_token(token).is_err() {
            return Ok(None);
        }
        Ok(self
            .fetch(token)
            .await?
            .and_then(|(data, deadline)| remote(data, deadline)))
    }

    /// `GET` and `PEXPIRETIME` in one transaction; fills the local store (under a ticket).
    async fn fetch(
        &self,
        token: &str,
    ) -> Result<Option<(Bytes, Option<SystemTime>)>, NearCacheError> {
        Counters::bump(&self.counters.redis_reads);
        let ticket = self.tier.begin(token); // before `live`: see `Tier::begin`
        let mut live = self.live()?;
        let key = self.key(token);
        let reply: Result<(Option<Bytes>, i64), RedisError> = ::redis::pipe()
            .atomic()
            .get(&key)
            .cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut live.conn)
            .await;
        let (data, ms) = reply.map_err(|e| self.failed(&live, e))?;
        let (found, step) = match data {
            None => (None, Step::Drop),
            // No expiry: not written by a session store. Served, not cached.
            Some(data) if ms < 0 => (Some((data, None)), Step::Drop),
            Some(data) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
                if deadline <= self.tier.local().now() {
                    (None, Step::Drop) // expired by our clock
                } else {
                    let step = Step::Store(data.clone(), deadline);
                    (Some((data, Some(deadline))), step)
                }
            }
        };
        #[cfg(feature = "test-hooks")]
        self.hook(test_hooks::Point::BeforeLocalStep, token).await;
        self.settle(ticket, token, step);
        #[cfg(feature = "test-hooks")]
        self.hook(test_hooks::Point::AfterLocalStep, token).await;
        Ok(found)
    }

    /// A write's round trip then its local step, under a ticket. A failed round trip leaves
    /// Redis unknown: the local entry is dropped.
    async fn write<T>(
        &self,
        token: &str,
        cmd: ::redis::Cmd,
        step: impl FnOnce(&T) -> Step,
    ) -> Result<T, NearCacheError>
    where
        T: ::redis::FromRedisValue,
    {
        let ticket = self.tier.begin(token); // before `live`: see `Tier::begin`
        let mut live = self.live()?;
        let reply = cmd.query_async::<T>(&mut live.conn).await;
        #[cfg(feature = "test-hooks")]
        self.hook(test_hooks::Point::BeforeLocalStep, token).await;
        let step = match &reply {
            Ok(r) => step(r),
            Err(_) => Step::Drop,
        };
        self.settle(ticket, token, step);
        #[cfg(feature = "test-hooks")]
        self.hook(test_hooks::Point::AfterLocalStep, token).await;
        reply.map_err(|e| self.failed(&live, e))
    }
}

/// Stops the connection task when the last handle goes.
struct Handle {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
/// A session store whose truth is Redis, with a coherent local [`MemStore`] in front: the
/// same contract as [`MemStore`] (`commit`, `find`, `delete`, `all`), async and fallible.
///
/// A cheap [`Clone`] handle; the connection and its heartbeat task live until the last clone
/// is dropped. Needs a tokio runtime. See the [module docs](self) for the coherence
/// guarantees and the staleness bound.
///
/// ```no_run
/// use memstore::redis::NearCache;
/// use std::time::{Duration, SystemTime};
///
/// # async fn demo() -> Result<(), memstore::redis::NearCacheError> {
/// let sessions = NearCache::builder()
///     .prefix("app:sessions:")
///     .max_staleness(Duration::from_millis(500))
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
/// sessions.commit("token", "data", expiry).await?;
/// assert_eq!(sessions.find("token").await?.as_deref(), Some(&b"data"[..])); // local hit
/// assert_eq!(sessions.stats().local_hits, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NearCache {
    handle: Arc<Handle>,
}

impl fmt::Debug for NearCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.handle.shared;
        f.debug_struct("NearCache")
            .field("prefix", &s.prefix)
            .field("max_staleness", &s.max_staleness)
            .field("local", &*s.tier.local())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl NearCache {
    /// Connects with the defaults: key prefix [`DEFAULT_PREFIX`], staleness bound
    /// [`DEFAULT_MAX_STALENESS`], a local store with [`MemStore::new`]'s settings.
    ///
    /// `redis` is anything the redis crate accepts: a URL such as `redis://127.0.0.1:6379/0`,
    /// or a `ConnectionInfo`. The connection always uses RESP3 (Redis 7.0 or later: the
    /// near-cache reads `PEXPIRETIME`).
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] if the URL is bad or Redis cannot be reached, or refuses
    /// `CLIENT TRACKING`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), memstore::redis::NearCacheError> {
    /// let sessions = memstore::redis::NearCache::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(redis: impl IntoConnectionInfo) -> Result<NearCache, NearCacheError> {
        NearCacheBuilder::new().connect(redis).await
    }

    /// A [`NearCacheBuilder`] for the prefix, the staleness bound and the local store.
    ///
    /// ```
    /// let builder = memstore::redis::NearCache::builder().prefix("sessions:");
    /// # drop(builder);
    /// ```
    pub fn builder() -> NearCacheBuilder {
        NearCacheBuilder::new()
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Inserts `token`'s session or overwrites its data and expiry: `SET` with `PXAT` in
    /// Redis, then the local store. An `expiry` at or before now deletes the session.
    ///
    /// # Errors
    /// [`NearCacheError::Invalid`] for bad input (nothing is written);
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] if Redis did not confirm
    /// the write (the local entry is dropped; Redis may or may not hold the new data).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// sessions.commit("t", "data", SystemTime::now() + Duration::from_secs(60)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<(), NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            return self.delete(token).await;
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token)).arg(&data[..]).arg("PXAT").arg(ms);
        s.write(token, cmd, move |_: &()| Step::Store(data, deadline))
            .await
    }

    /// Inserts `token`'s session only if Redis holds no live session under it
    /// (`SET ... PXAT ... NX`): an insert-if-absent across every instance. Returns whether
    /// this call inserted it. An `expiry` at or before now inserts nothing and returns whether
    /// the token was free.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// let expiry = SystemTime::now() + Duration::from_secs(60);
    /// assert!(sessions.commit_new("fresh", "a", expiry).await?);
    /// assert!(!sessions.commit_new("fresh", "b", expiry).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit_new(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            return Ok(self.find(token).await?.is_none());
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token))
            .arg(&data[..])
            .arg("PXAT")
            .arg(ms)
            .arg("NX");
        let reply: Option<String> = s
            .write(token, cmd, move |r: &Option<String>| match r {
                Some(_) => Step::Store(data, deadline),
                None => Step::Drop, // someone else's session: read it from Redis when asked
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Overwrites `token`'s session only if Redis holds a live session under it
    /// (`SET ... PXAT ... XX`): it never creates one, so a request that saves a session that
    /// another request (a logout, an id cycle) has just deleted does not bring it back, on any
    /// instance. Returns whether it overwrote one. An `expiry` at or before now deletes a live
    /// session (`DEL`) and returns whether there was one.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// let expiry = SystemTime::now() + Duration::from_secs(60);
    /// assert!(!sessions.commit_existing("gone", "x", expiry).await?); // nothing to update
    /// sessions.commit("live", "a", expiry).await?;
    /// assert!(sessions.commit_existing("live", "b", expiry).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit_existing(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            let mut cmd = ::redis::cmd("DEL");
            cmd.arg(s.key(token));
            let deleted: i64 = s.write(token, cmd, |_: &i64| Step::Drop).await?;
            return Ok(deleted > 0);
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token))
            .arg(&data[..])
            .arg("PXAT")
            .arg(ms)
            .arg("XX");
        let reply: Option<String> = s
            .write(token, cmd, move |r: &Option<String>| match r {
                Some(_) => Step::Store(data, deadline),
                None => Step::Drop,
            })
            .await?;
        Ok(reply.is_some())
    }

    /// The session's data, or `None` if it is missing or expired: from the local store when it
    /// holds the token and the last heartbeat is fresh, else from Redis (which fills the local
    /// store). A token that cannot exist (empty, oversized) is `None`.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] on a local miss that
    /// Redis could not answer.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// assert_eq!(sessions.find("never-written").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn find(&self, token: &str) -> Result<Option<Bytes>, NearCacheError> {
        self.shared()
            .read(token, |local| local.find(token), |data, _| Some(data))
            .await
    }

    /// The session's expiry (whole milliseconds), or `None` if it is missing or expired; read
    /// like [`find`](Self::find).
    ///
    /// # Errors
    /// As [`find`](Self::find).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// let expiry = UNIX_EPOCH + Duration::from_millis(4_000_000_000_000);
    /// sessions.commit("t", "x", expiry).await?;
    /// assert_eq!(sessions.expiry("t").await?, Some(expiry));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expiry(&self, token: &str) -> Result<Option<SystemTime>, NearCacheError> {
        self.shared()
            .read(token, |local| local.expiry(token), |_, deadline| deadline)
            .await
    }

    /// Removes `token`'s session: `DEL` in Redis, then the local store; every other instance
    /// drops its copy when the invalidation arrives. A missing token is a no-op.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] if Redis did not confirm
    /// the delete (the local entry is dropped anyway).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// sessions.delete("token").await?;
    /// assert_eq!(sessions.find("token").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(&self, token: &str) -> Result<(), NearCacheError> {
        let s = self.shared();
        if s.check_token(token).is_err() {
            return Ok(()); // no such session can exist
        }
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(s.key(token));
        s.write(token, cmd, |_: &i64| Step::Drop).await.map(drop)
    }

    /// Every live session in Redis under the prefix, token to data (`SCAN` and `MGET`; not a
    /// snapshot: sessions written or deleted meanwhile may or may not appear). Does not fill
    /// the local store.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`].
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) -> Result<(), memstore::redis::NearCacheError> {
    /// for (token, data) in sessions.all().await? {
    ///     println!("{token}: {} bytes", data.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn all(&self) -> Result<HashMap<String, Bytes>, NearCacheError> {
        let s = self.shared();
        let mut live = s.live()?;
        let pattern = format!("{}*", glob_escape(&s.prefix));
        let mut out = HashMap::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut live.conn)
                .await
                .map_err(|e| s.failed(&live, e))?;
            if !keys.is_empty() {
                let values: Vec<Option<Bytes>> = ::redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut live.conn)
                    .await
                    .map_err(|e| s.failed(&live, e))?;
                for (key, value) in keys.into_iter().zip(values) {
                    let token = key
                        .strip_prefix(s.prefix.as_bytes())
                        .and_then(|t| std::str::from_utf8(t).ok());
                    if let (Some(token), Some(value)) = (token, value) {
                        out.insert(token.to_owned(), value);
                    }
                }
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The local tier as it is now: for stats, or to see what this instance holds. A flush
    /// (lost connection, reconnect, `FLUSHALL`) replaces it with a fresh, empty one, so hold
    /// the handle only briefly. Writing to it directly bypasses Redis and breaks coherence;
    /// read only.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) {
    /// println!("{} sessions cached here", sessions.local().len());
    /// # }
    /// ```
    pub fn local(&self) -> Arc<MemStore> {
        self.shared().tier.local_full()
    }

    /// Counters: local hits, Redis reads, invalidations, flushes, connection losses.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) {
    /// let stats = sessions.stats();
    /// assert!(stats.connected || stats.connection_losses > 0);
    /// # }
    /// ```
    pub fn stats(&self) -> NearCacheStats {
        let s = self.shared();
        let connected = lock(&s.conn).is_some();
        s.counters.snapshot(connected)
    }
}

/// Escapes Redis glob characters so the prefix matches literally in `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
