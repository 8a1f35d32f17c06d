//! [`NearCacheBuilder`]: the prefix, the staleness bound, the local tier's settings, and
//! where Redis is (one node, several nodes, or Sentinel); and [`NearCache::connect`] and
//! [`NearCache::builder`], which start from it.

use super::cache::NearCache;
use super::coherence::Tier;
use super::conn::supervise;
use super::error::{Counters, NearCacheError};
use super::primary::Source;
use super::shared::{Handle, Shared};
use crate::Clock;
use ::redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use ::redis::{Client, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default key prefix: a session `token` lives under the Redis key `memstore:token`.
pub const DEFAULT_PREFIX: &str = "memstore:";
/// The default staleness bound (see [`NearCacheBuilder::max_staleness`]): one second.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);
/// The default limit on one Redis round trip: five seconds.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default cleanup interval of the local tier: one minute, as [`MemStore::new`](crate::MemStore::new).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Configures and connects a [`NearCache`].
///
/// ```
/// use memsession::redis::NearCache;
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
    /// The local tier's settings; its limits are the near-cache's (checked by the tier itself).
    local: crate::Builder,
    cleanup_interval: Duration,
    prefix: String,
    max_staleness: Duration,
    response_timeout: Duration,
}

impl NearCache {
    /// Connects with the defaults: key prefix [`DEFAULT_PREFIX`], staleness bound
    /// [`DEFAULT_MAX_STALENESS`], a local store with [`MemStore::new`](crate::MemStore::new)'s settings.
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
    /// # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
    /// let sessions = memsession::redis::NearCache::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(redis: impl IntoConnectionInfo) -> Result<NearCache, NearCacheError> {
        NearCacheBuilder::new().connect(redis).await
    }

    /// A [`NearCacheBuilder`] for the prefix, the staleness bound and the local store.
    ///
    /// ```
    /// let builder = memsession::redis::NearCache::builder().prefix("sessions:");
    /// # drop(builder);
    /// ```
    pub fn builder() -> NearCacheBuilder {
        NearCacheBuilder::new()
    }
}

impl Default for NearCacheBuilder {
    fn default() -> Self {
        NearCacheBuilder::new()
    }
}

fn resp3(info: impl IntoConnectionInfo) -> Result<Client, NearCacheError> {
    let info = info.into_connection_info()?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(Client::open(info.set_redis_settings(settings))?)
}

impl NearCacheBuilder {
    /// The defaults: [`DEFAULT_PREFIX`], [`DEFAULT_MAX_STALENESS`],
    /// [`DEFAULT_RESPONSE_TIMEOUT`], [`DEFAULT_CLEANUP_INTERVAL`], and a local store with
    /// [`MemStore::builder`](crate::MemStore::builder)'s limits.
    ///
    /// ```
    /// let builder = memsession::redis::NearCacheBuilder::new();
    /// # drop(builder);
    /// ```
    pub fn new() -> Self {
        NearCacheBuilder {
            local: crate::Builder::new(),
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            prefix: DEFAULT_PREFIX.to_owned(),
            max_staleness: DEFAULT_MAX_STALENESS,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }

    /// The local store's name ([`Builder::name`](crate::Builder::name)): the `store` field
    /// of its events and label of its metrics.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.local = self.local.name(name);
        self
    }

    /// The Redis key prefix of sessions, and the prefix that is tracked for invalidations.
    /// Every instance sharing sessions must use the same one.
    ///
    /// ```
    /// let builder = memsession::redis::NearCache::builder().prefix("app:sessions:");
    /// # drop(builder);
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The staleness bound: local reads are served only while a heartbeat confirmed within
    /// this long ago proves that every earlier invalidation has been applied (see the
    /// [module docs](super)). Heartbeats run every quarter of it. A heartbeat slower than the
    /// bound lets local reads lapse to Redis; it does not drop the connection. Smaller is
    /// fresher, and costs more heartbeats and more fallbacks to Redis on a slow link.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = memsession::redis::NearCache::builder().max_staleness(Duration::from_millis(200));
    /// # drop(builder);
    /// ```
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound.max(Duration::from_millis(1));
        self
    }

    /// The limit on connecting and on one round trip; a round trip over it drops the
    /// connection (and the local tier) and reconnects.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = memsession::redis::NearCache::builder().response_timeout(Duration::from_secs(2));
    /// # drop(builder);
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The local tier's clock: it decides what has expired locally.
    ///
    /// ```
    /// use memsession::ManualClock;
    /// use std::time::SystemTime;
    /// let builder = memsession::redis::NearCache::builder().clock(ManualClock::new(SystemTime::now()));
    /// # drop(builder);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.local = self.local.clock(clock);
        self
    }

    /// How often the local tier drops expired sessions ([`Duration::ZERO`]: never; reads
    /// still never return one). It runs on tokio's blocking pool.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = memsession::redis::NearCache::builder().cleanup_interval(Duration::from_secs(30));
    /// # drop(builder);
    /// ```
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// The local tier's shard count.
    ///
    /// ```
    /// let builder = memsession::redis::NearCache::builder().shards(16);
    /// # drop(builder);
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.local = self.local.shards(n);
        self
    }

    /// The longest token accepted, in bytes.
    ///
    /// ```
    /// let builder = memsession::redis::NearCache::builder().max_token_len(64);
    /// # drop(builder);
    /// ```
    pub fn max_token_len(mut self, n: usize) -> Self {
        self.local = self.local.max_token_len(n);
        self
    }

    /// The largest session data accepted, in bytes.
    ///
    /// ```
    /// let builder = memsession::redis::NearCache::builder().max_data_len(64 * 1024);
    /// # drop(builder);
    /// ```
    pub fn max_data_len(mut self, n: usize) -> Self {
        self.local = self.local.max_data_len(n);
        self
    }

    /// Connects to one Redis server (RESP3, broadcast tracking of the prefix), builds the
    /// local tier and starts the heartbeat task on the current tokio runtime. The server must
    /// be a primary (`ROLE`); if it is demoted, operations fail and the task keeps retrying it
    /// until it is primary again; see [`connect_nodes`](Self::connect_nodes) and
    /// [`connect_sentinel`](Self::connect_sentinel) to follow a failover.
    ///
    /// The connection's user needs `CLIENT TRACKING` and `ROLE` (the heartbeat) besides the
    /// session commands (`SET`, `GET`, `DEL`, `PEXPIRETIME`, `MULTI`/`EXEC`, `SCAN`, `MGET`).
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] if the address is bad, Redis cannot be reached, is not a
    /// primary, or refuses `CLIENT TRACKING`; an error building the local tier is reported as
    /// a Redis I/O error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
    /// let sessions = memsession::redis::NearCache::builder()
    ///     .prefix("app:")
    ///     .connect("redis://127.0.0.1:6379")
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        self,
        redis: impl IntoConnectionInfo,
    ) -> Result<NearCache, NearCacheError> {
        self.connect_nodes([redis]).await
    }

    /// Connects to whichever of `nodes` is the primary (`ROLE`), and after a loss or a
    /// demotion (`READONLY`, a heartbeat that finds a replica) reconnects to whichever is
    /// primary then: a primary and its replicas, failed over by an operator or a script.
    ///
    /// # Errors
    /// As [`connect`](Self::connect): the last node's error if none is a reachable primary;
    /// [`NearCacheError::Redis`] for an empty list.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
    /// let sessions = memsession::redis::NearCache::builder()
    ///     .connect_nodes(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_nodes<I>(self, nodes: I) -> Result<NearCache, NearCacheError>
    where
        I: IntoIterator,
        I::Item: IntoConnectionInfo,
    {
        let clients = nodes
            .into_iter()
            .map(resp3)
            .collect::<Result<Vec<_>, _>>()?;
        self.start(Source::Nodes {
            clients,
            preferred: AtomicUsize::new(0),
        })
        .await
    }

    /// Asks Redis Sentinel (`sentinels`: their addresses) for the primary of `service`, on
    /// the first connect and on every reconnect, so a failover that Sentinel runs is followed
    /// within a heartbeat or a write. `node` holds what the data nodes need (database,
    /// username, password); the protocol is set to RESP3.
    ///
    /// # Errors
    /// As [`connect`](Self::connect); [`NearCacheError::Redis`] if no sentinel answers or
    /// none knows `service`.
    ///
    /// ```no_run
    /// use redis::RedisConnectionInfo;
    /// # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
    /// let sessions = memsession::redis::NearCache::builder()
    ///     .connect_sentinel(
    ///         vec!["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"],
    ///         "sessions",
    ///         RedisConnectionInfo::default(),
    ///     )
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_sentinel<T: IntoConnectionInfo>(
        self,
        sentinels: Vec<T>,
        service: &str,
        node: RedisConnectionInfo,
    ) -> Result<NearCache, NearCacheError> {
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(node.set_protocol(ProtocolVersion::RESP3));
        self.start(Source::Sentinel {
            sentinel: Box::new(tokio::sync::Mutex::new(Sentinel::build(sentinels)?)),
            service: service.to_owned(),
            node,
        })
        .await
    }

    async fn start(self, source: Source) -> Result<NearCache, NearCacheError> {
        let tier = Tier::new(self.local.cleanup_interval(Duration::ZERO))
            .map_err(|e| NearCacheError::Redis(e.into()))?;
        let shared = Arc::new(Shared {
            tier,
            source,
            prefix: self.prefix,
            max_staleness: self.max_staleness,
            response_timeout: self.response_timeout,
            conn: Mutex::new(None),
            next_gen: AtomicU64::new(0),
            origin: Instant::now(),
            lease: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            primary: Mutex::new(None),
            counters: Counters::default(),
            #[cfg(feature = "test-hooks")]
            hooks: Default::default(),
        });
        let gen = shared.connect().await?;
        let task = tokio::spawn(supervise(shared.clone(), Some(gen), self.cleanup_interval))
            .abort_handle();
        Ok(NearCache {
            handle: Arc::new(Handle { shared, task }),
        })
    }
}
