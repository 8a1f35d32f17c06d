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
//!   missed), counted in [`NearCacheStats::connection_losses`], and a background task
//!   reconnects with backoff. Until it has, operations fail with
//!   [`NearCacheError::Disconnected`]; nothing stale is served.
//!
//! # Guarantees
//! - **Read-your-writes** on one instance: after `commit` returns, that instance's `find`
//!   returns the new data (its own write is not echoed back to it: `NOLOOP`), and after
//!   `delete` returns, `None`.
//! - **Bounded staleness** across instances: a `find` on any instance at time *T* never
//!   returns data that a write acknowledged before *T* − [`max_staleness`] replaced or
//!   deleted. A background heartbeat `PING`s Redis every `max_staleness / 4`; because Redis
//!   sends an invalidation before the write's reply, and a later `PONG` after it, a `PONG` for a
//!   `PING` sent at *t* proves that every write acknowledged before *t* has been applied
//!   locally. The local store serves reads only while the last such proof is younger than
//!   `max_staleness`; otherwise reads go to Redis. On a healthy connection the real window is
//!   the invalidation's delivery time (well under a millisecond on loopback).
//! - **No stale read after a reconnect**: the local store is emptied when the connection is
//!   lost and again when tracking is re-established, so a session written or deleted while an
//!   instance was cut off, or lost with a restarted Redis, is read from Redis.
//! - **Races inside one instance** (a fill from Redis racing a write or an invalidation of the
//!   same token) never leave an older value in the local store: each operation checks a
//!   per-token-bucket counter around its round trip and drops its local entry if anything else
//!   touched the bucket meanwhile (a spurious miss at worst).
//! - **Expiry** is honoured by both tiers: Redis expires the key at the deadline
//!   (milliseconds, by Redis's clock), and the local store never returns a session past its
//!   deadline (by the near-cache's [`Clock`]); a session Redis still holds but whose deadline
//!   has passed by that clock reads as `None`. Keep the clocks of app servers and Redis in sync.
//!
//! Deadlines are truncated to whole milliseconds (Redis's resolution) in both tiers, so every
//! instance agrees on them.
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

#[cfg(feature = "tower-sessions")]
mod tower;

use crate::{Bytes, Clock, MemStore};
use ::redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use ::redis::{
    AsyncConnectionConfig, Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use ahash::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use ::redis::RedisError;

/// The default key prefix: a session `token` lives under the Redis key `memstore:token`.
pub const DEFAULT_PREFIX: &str = "memstore:";
/// The default staleness bound (see [`NearCacheBuilder::max_staleness`]): one second.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);
/// The default limit on one Redis round trip: five seconds.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Buckets of the conflict counters (a power of two).
const BUCKETS: usize = 4096;
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const SCAN_COUNT: usize = 512;

/// Why a [`NearCache`] operation failed.
///
/// ```
/// use memstore::redis::NearCacheError;
/// let e = NearCacheError::from(memstore::Error::EmptyToken);
/// assert_eq!(e.to_string(), "session token is empty");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NearCacheError {
    /// Bad input (empty or oversized token, oversized data, expiry out of range); nothing was
    /// written.
    Invalid(crate::Error),
    /// Redis answered with an error, or the round trip failed. After a failed write the
    /// token's local entry is dropped, so the next read asks Redis.
    Redis(RedisError),
    /// The connection to Redis is down; a background task is reconnecting.
    Disconnected,
}

impl fmt::Display for NearCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NearCacheError::Invalid(e) => fmt::Display::fmt(e, f),
            NearCacheError::Redis(e) => write!(f, "redis: {e}"),
            NearCacheError::Disconnected => f.write_str("not connected to redis (reconnecting)"),
        }
    }
}

impl std::error::Error for NearCacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NearCacheError::Invalid(e) => Some(e),
            NearCacheError::Redis(e) => Some(e),
            NearCacheError::Disconnected => None,
        }
    }
}

impl From<crate::Error> for NearCacheError {
    fn from(e: crate::Error) -> Self {
        NearCacheError::Invalid(e)
    }
}

impl From<RedisError> for NearCacheError {
    fn from(e: RedisError) -> Self {
        NearCacheError::Redis(e)
    }
}

/// Counters of a [`NearCache`], from [`NearCache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Reads served by the local store.
    pub local_hits: u64,
    /// Reads that went to Redis (a local miss, or no fresh heartbeat).
    pub redis_reads: u64,
    /// Tokens dropped from the local store on an invalidation pushed by Redis.
    pub invalidations: u64,
    /// Local entries dropped because a concurrent operation on the same bucket raced them.
    pub conflicts: u64,
    /// Times the whole local store was dropped (lost connection, reconnect, `FLUSHALL`).
    pub flushes: u64,
    /// Connections to Redis lost (closed, failed or timed out).
    pub connection_losses: u64,
    /// Connections (re-)established after a loss.
    pub reconnects: u64,
    /// Whether a connection is up now.
    pub connected: bool,
}

#[derive(Default)]
struct Counters {
    local_hits: AtomicU64,
    redis_reads: AtomicU64,
    invalidations: AtomicU64,
    conflicts: AtomicU64,
    flushes: AtomicU64,
    connection_losses: AtomicU64,
    reconnects: AtomicU64,
}

/// A connection and its generation: a loss reported by an older connection is ignored.
#[derive(Clone)]
struct Live {
    gen: u64,
    conn: MultiplexedConnection,
}

/// What the handles, the heartbeat task and the connection's push handler share.
struct Shared {
    local: MemStore,
    client: Client,
    prefix: String,
    max_token_len: usize,
    max_data_len: usize,
    max_staleness: Duration,
    response_timeout: Duration,
    conn: Mutex<Option<Live>>,
    next_gen: AtomicU64,
    /// Monotonic origin of `lease`.
    origin: Instant,
    /// 1 + nanoseconds since `origin` at which the last confirmed heartbeat was sent; 0 while
    /// disconnected. The local store serves reads only while it is younger than
    /// `max_staleness`.
    lease: AtomicU64,
    /// Conflict counters: every fill, write and invalidation of a token bumps its bucket.
    buckets: Box<[AtomicU64]>,
    /// Bumped by every flush of the whole local store.
    global: AtomicU64,
    hasher: RandomState,
    wake: tokio::sync::Notify,
    counters: Counters,
}

/// What an operation saw of the conflict counters before its round trip.
struct Ticket {
    bucket: usize,
    epoch: u64,
    global: u64,
}

impl Shared {
    fn key(&self, token: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + token.len());
        key.push_str(&self.prefix);
        key.push_str(token);
        key
    }

    fn valid_token(&self, token: &str) -> Result<(), crate::Error> {
        if token.is_empty() {
            Err(crate::Error::EmptyToken)
        } else if token.len() > self.max_token_len {
            Err(crate::Error::TokenTooLong {
                len: token.len(),
                max: self.max_token_len,
            })
        } else {
            Ok(())
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the last confirmed heartbeat is fresh enough for local reads.
    fn leased(&self) -> bool {
        let lease = self.lease.load(SeqCst);
        lease != 0
            && self.now_nanos().saturating_sub(lease - 1)
                <= u64::try_from(self.max_staleness.as_nanos()).unwrap_or(u64::MAX)
    }

    fn live(&self) -> Result<Live, NearCacheError> {
        match &*lock(&self.conn) {
            Some(live) => Ok(live.clone()),
            None => {
                self.wake.notify_one();
                Err(NearCacheError::Disconnected)
            }
        }
    }

    /// A failed round trip: a broken or stuck connection is dropped (and the local store with
    /// it); a plain Redis error is passed on.
    fn failed(&self, live: &Live, e: RedisError) -> NearCacheError {
        if e.is_unrecoverable_error()
            || e.is_connection_dropped()
            || e.is_io_error()
            || e.is_timeout()
        {
            self.lost(live.gen);
        }
        NearCacheError::Redis(e)
    }

    /// Connection `gen` is gone: stop local reads, drop the local store, wake the task.
    ///
    /// The flush and the count happen under the connection lock, flush first: whoever sees the
    /// loss counted sees the local tier empty, and a reconnect (which installs its connection
    /// under the same lock) is never observed before the loss it follows is counted.
    fn lost(&self, gen: u64) {
        {
            let mut conn = lock(&self.conn);
            if conn.as_ref().map(|l| l.gen) != Some(gen) {
                return;
            }
            *conn = None;
            self.lease.store(0, SeqCst);
            self.flush();
            self.counters.connection_losses.fetch_add(1, SeqCst);
        }
        self.wake.notify_one();
    }

    /// Drops every local entry. A fill or write in flight sees `global` move and drops what it
    /// inserts.
    fn flush(&self) {
        self.global.fetch_add(1, SeqCst);
        for (token, _) in self.local.iter() {
            self.local.delete(&token);
        }
        self.counters.flushes.fetch_add(1, SeqCst);
    }

    fn bucket(&self, token: &str) -> usize {
        (self.hasher.hash_one(token) as usize) & (BUCKETS - 1)
    }

    /// Before an operation's round trip.
    fn begin(&self, token: &str) -> Ticket {
        let bucket = self.bucket(token);
        Ticket {
            bucket,
            epoch: self.buckets[bucket].load(SeqCst),
            global: self.global.load(SeqCst),
        }
    }

    /// After an operation's local step. If anything else bumped the token's bucket (another
    /// operation's end, an invalidation) or flushed since [`begin`](Self::begin), the order of
    /// the local steps may differ from Redis's order: drop the token. Of two overlapping
    /// operations, the one that ends later always sees the other's bump, so no older value
    /// survives.
    fn finish(&self, ticket: Ticket, token: &str) {
        let before = self.buckets[ticket.bucket].fetch_add(1, SeqCst);
        if before != ticket.epoch || self.global.load(SeqCst) != ticket.global {
            self.local.delete(token);
            self.counters.conflicts.fetch_add(1, SeqCst);
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
                Value::Nil => self.flush(), // FLUSHALL / FLUSHDB
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
        self.buckets[self.bucket(token)].fetch_add(1, SeqCst);
        self.local.delete(token);
        self.counters.invalidations.fetch_add(1, SeqCst);
    }

    /// Opens a RESP3 connection with broadcast tracking of the prefix, empties the local
    /// store and installs the connection. Returns its generation.
    async fn connect(self: &Arc<Self>) -> Result<u64, RedisError> {
        let gen = self.next_gen.fetch_add(1, SeqCst) + 1;
        let config = AsyncConnectionConfig::new()
            .set_push_sender(Invalidator {
                shared: Arc::downgrade(self),
                gen,
            })
            .set_connection_timeout(Some(self.response_timeout))
            .set_response_timeout(Some(self.response_timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let sent = self.now_nanos();
        ::redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(&self.prefix)
            .arg("NOLOOP")
            .query_async::<()>(&mut conn)
            .await?;
        // Whatever is local predates this connection's tracking: it may have missed
        // invalidations.
        self.flush();
        *lock(&self.conn) = Some(Live { gen, conn });
        self.lease.store(sent + 1, SeqCst);
        Ok(gen)
    }

    /// One heartbeat on connection `gen`; `false` if it failed.
    async fn heartbeat(&self, gen: u64) -> bool {
        let Ok(mut live) = self.live() else {
            return false;
        };
        if live.gen != gen {
            return false;
        }
        let sent = self.now_nanos();
        let ping = ::redis::cmd("PING");
        let pong = ping.query_async::<()>(&mut live.conn);
        match tokio::time::timeout(self.max_staleness, pong).await {
            Ok(Ok(())) => {
                let conn = lock(&self.conn);
                if conn.as_ref().map(|l| l.gen) == Some(gen) {
                    // Every invalidation sent before this PONG has been applied.
                    self.lease.fetch_max(sent + 1, SeqCst);
                }
                true
            }
            _ => false,
        }
    }

    /// `GET` and `PEXPIRETIME` in one transaction; fills the local store.
    async fn fetch(
        &self,
        token: &str,
    ) -> Result<Option<(Bytes, Option<SystemTime>)>, NearCacheError> {
        self.counters.redis_reads.fetch_add(1, SeqCst);
        let mut live = self.live()?;
        let key = self.key(token);
        let ticket = self.begin(token);
        let reply: Result<(Option<Bytes>, i64), RedisError> = ::redis::pipe()
            .atomic()
            .get(&key)
            .cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut live.conn)
            .await;
        let (data, ms) = match reply {
            Ok(r) => r,
            Err(e) => return Err(self.failed(&live, e)),
        };
        let found = match data {
            None => {
                self.local.delete(token);
                None
            }
            // No expiry: not written by a session store. Served, not cached.
            Some(data) if ms < 0 => {
                self.local.delete(token);
                Some((data, None))
            }
            Some(data) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
                if deadline <= self.local.now() {
                    self.local.delete(token); // expired by our clock
                    None
                } else {
                    if self.local.commit(token, data.clone(), deadline).is_err() {
                        self.local.delete(token);
                    }
                    Some((data, Some(deadline)))
                }
            }
        };
        self.finish(ticket, token);
        Ok(found)
    }

    /// A write's round trip then its local step, under a ticket. A failed round trip leaves
    /// Redis unknown: the local entry is dropped.
    async fn write<T>(
        &self,
        token: &str,
        cmd: ::redis::Cmd,
        local: impl FnOnce(&T),
    ) -> Result<T, NearCacheError>
    where
        T: ::redis::FromRedisValue,
    {
        let mut live = self.live()?;
        let ticket = self.begin(token);
        let reply = cmd.query_async::<T>(&mut live.conn).await;
        match &reply {
            Ok(r) => local(r),
            Err(_) => self.local.delete(token),
        }
        self.finish(ticket, token);
        reply.map_err(|e| self.failed(&live, e))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the epoch, truncated; `None` for an expiry before the epoch.
fn expiry_ms(expiry: SystemTime) -> Result<Option<u64>, crate::Error> {
    let Ok(since) = expiry.duration_since(UNIX_EPOCH) else {
        return Ok(None);
    };
    if u64::try_from(since.as_nanos()).is_err() {
        return Err(crate::Error::ExpiryOutOfRange);
    }
    Ok(Some(u64::try_from(since.as_millis()).unwrap_or(u64::MAX)))
}

/// The connection's push handler: applies invalidations and notices the connection's end,
/// inline in the connection's reader (so before any later reply is handed out).
struct Invalidator {
    shared: Weak<Shared>,
    gen: u64,
}

impl AsyncPushSender for Invalidator {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let shared = self.shared.upgrade().ok_or(SendError)?;
        match info.kind {
            PushKind::Invalidate => shared.invalidate(&info.data),
            PushKind::Disconnection => shared.lost(self.gen),
            _ => {}
        }
        Ok(())
    }
}

/// Keeps the connection: heartbeats while up, reconnects with backoff while down.
async fn supervise(shared: Arc<Shared>, mut gen: Option<u64>) {
    let heartbeat = (shared.max_staleness / 4).max(Duration::from_millis(1));
    let mut backoff = MIN_BACKOFF;
    loop {
        match gen {
            Some(g) => {
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat) => {}
                    _ = shared.wake.notified() => {}
                }
                if !shared.heartbeat(g).await {
                    shared.lost(g);
                    gen = None;
                }
            }
            None => match shared.connect().await {
                Ok(g) => {
                    shared.counters.reconnects.fetch_add(1, SeqCst);
                    gen = Some(g);
                    backoff = MIN_BACKOFF;
                }
                Err(_) => {
                    // Backoff between attempts; a pacing delay, not synchronisation.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
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
            .field("local", &s.local)
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
        let Some((ms, deadline)) = self.check_write(token, &data, expiry)? else {
            return self.delete(token).await;
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token)).arg(&data[..]).arg("PXAT").arg(ms);
        s.write(token, cmd, |_: &()| {
            if s.local.commit(token, data.clone(), deadline).is_err() {
                s.local.delete(token);
            }
        })
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
        let Some((ms, deadline)) = self.check_write(token, &data, expiry)? else {
            return Ok(self.find(token).await?.is_none());
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token))
            .arg(&data[..])
            .arg("PXAT")
            .arg(ms)
            .arg("NX");
        let reply: Option<String> = s
            .write(token, cmd, |r: &Option<String>| {
                if r.is_some() && s.local.commit(token, data.clone(), deadline).is_err() {
                    s.local.delete(token);
                }
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Validates a write; `None` when its expiry has already passed.
    fn check_write(
        &self,
        token: &str,
        data: &Bytes,
        expiry: SystemTime,
    ) -> Result<Option<(u64, SystemTime)>, NearCacheError> {
        let s = self.shared();
        s.valid_token(token)?;
        if data.len() > s.max_data_len {
            return Err(crate::Error::DataTooLarge {
                len: data.len(),
                max: s.max_data_len,
            }
            .into());
        }
        let Some(ms) = expiry_ms(expiry)? else {
            return Ok(None);
        };
        let deadline = UNIX_EPOCH + Duration::from_millis(ms);
        Ok((deadline > s.local.now()).then_some((ms, deadline)))
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
        let s = self.shared();
        if s.valid_token(token).is_err() {
            return Ok(None);
        }
        if s.leased() {
            if let Some(data) = s.local.find(token) {
                s.counters.local_hits.fetch_add(1, SeqCst);
                return Ok(Some(data));
            }
        }
        Ok(s.fetch(token).await?.map(|(data, _)| data))
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
        let s = self.shared();
        if s.valid_token(token).is_err() {
            return Ok(None);
        }
        if s.leased() {
            if let Some(deadline) = s.local.expiry(token) {
                s.counters.local_hits.fetch_add(1, SeqCst);
                return Ok(Some(deadline));
            }
        }
        Ok(s.fetch(token).await?.and_then(|(_, deadline)| deadline))
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
        if s.valid_token(token).is_err() {
            return Ok(());
        }
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(s.key(token));
        s.write(token, cmd, |_: &i64| s.local.delete(token))
            .await
            .map(drop)
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

    /// The local tier: for stats, or to see what this instance holds. Writing to it directly
    /// bypasses Redis and breaks coherence; read only.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memstore::redis::NearCache) {
    /// println!("{} sessions cached here", sessions.local().len());
    /// # }
    /// ```
    pub fn local(&self) -> &MemStore {
        &self.shared().local
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
        let c = &s.counters;
        NearCacheStats {
            local_hits: c.local_hits.load(SeqCst),
            redis_reads: c.redis_reads.load(SeqCst),
            invalidations: c.invalidations.load(SeqCst),
            conflicts: c.conflicts.load(SeqCst),
            flushes: c.flushes.load(SeqCst),
            connection_losses: c.connection_losses.load(SeqCst),
            reconnects: c.reconnects.load(SeqCst),
            connected: lock(&s.conn).is_some(),
        }
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

/// Configures and connects a [`NearCache`].
///
/// ```
/// use memstore::redis::NearCache;
/// use std::time::Duration;
///
/// let builder = NearCache::builder()
///     .prefix("app:sessions:")
///     .max_staleness(Duration::from_millis(250))
///     .response_timeout(Duration::from_secs(2))
///     .cleanup_interval(Duration::from_secs(30))
///     .max_data_len(64 * 1024);
/// // builder.connect("redis://127.0.0.1:6379").await?
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct NearCacheBuilder {
    local: crate::Builder,
    prefix: String,
    max_staleness: Duration,
    response_timeout: Duration,
    max_token_len: usize,
    max_data_len: usize,
}

impl Default for NearCacheBuilder {
    fn default() -> Self {
        NearCacheBuilder::new()
    }
}

impl NearCacheBuilder {
    /// The defaults: [`DEFAULT_PREFIX`], [`DEFAULT_MAX_STALENESS`],
    /// [`DEFAULT_RESPONSE_TIMEOUT`], and a local store as [`MemStore::builder`] makes it.
    pub fn new() -> Self {
        NearCacheBuilder {
            local: crate::Builder::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            max_staleness: DEFAULT_MAX_STALENESS,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_token_len: crate::DEFAULT_MAX_TOKEN_LEN,
            max_data_len: crate::DEFAULT_MAX_DATA_LEN,
        }
    }

    /// The Redis key prefix of sessions, and the prefix that is tracked for invalidations.
    /// Every instance sharing sessions must use the same one.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The staleness bound: local reads are served only while a heartbeat confirmed within
    /// this long ago proves that every earlier invalidation has been applied (see the
    /// [module docs](self)). Heartbeats run every quarter of it. Smaller is fresher, and
    /// costs more `PING`s and more fallbacks to Redis when the connection is slow.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound.max(Duration::from_millis(1));
        self
    }

    /// The limit on connecting and on one round trip; a round trip over it drops the
    /// connection (and the local store) and reconnects.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The local store's clock: it decides what has expired locally.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.local = self.local.clock(clock);
        self
    }

    /// The local store's cleanup interval ([`Duration::ZERO`]: no cleanup thread).
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.local = self.local.cleanup_interval(interval);
        self
    }

    /// The local store's shard count.
    pub fn shards(mut self, n: usize) -> Self {
        self.local = self.local.shards(n);
        self
    }

    /// The longest token accepted, in bytes.
    pub fn max_token_len(mut self, n: usize) -> Self {
        self.max_token_len = n;
        self.local = self.local.max_token_len(n);
        self
    }

    /// The largest session data accepted, in bytes.
    pub fn max_data_len(mut self, n: usize) -> Self {
        self.max_data_len = n;
        self.local = self.local.max_data_len(n);
        self
    }

    /// Connects (RESP3, broadcast tracking of the prefix), builds the local store and starts
    /// the heartbeat task on the current tokio runtime.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] if the address is bad, Redis cannot be reached or refuses
    /// `CLIENT TRACKING`; an error starting the local store's cleanup thread is reported as
    /// a Redis I/O error.
    pub async fn connect(
        self,
        redis: impl IntoConnectionInfo,
    ) -> Result<NearCache, NearCacheError> {
        let info = redis.into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))?;
        let local = self
            .local
            .try_build()
            .map_err(|e| NearCacheError::Redis(e.into()))?;
        let shared = Arc::new(Shared {
            local,
            client,
            prefix: self.prefix,
            max_token_len: self.max_token_len,
            max_data_len: self.max_data_len,
            max_staleness: self.max_staleness,
            response_timeout: self.response_timeout,
            conn: Mutex::new(None),
            next_gen: AtomicU64::new(0),
            origin: Instant::now(),
            lease: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            global: AtomicU64::new(0),
            hasher: RandomState::new(),
            wake: tokio::sync::Notify::new(),
            counters: Counters::default(),
        });
        let gen = shared.connect().await?;
        let task = tokio::spawn(supervise(shared.clone(), Some(gen))).abort_handle();
        Ok(NearCache {
            handle: Arc::new(Handle { shared, task }),
        })
    }
}
