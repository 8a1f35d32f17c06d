//! [`Builder`]: a store's settings, and the making of a store from them ([`Builder::build`]);
//! [`MemStore`]'s constructors start here too.

use super::memstore::MemStore;
use crate::clock::{Clock, StoreClock};
use crate::raw::{self, TokenIndex, WhenFull};
use crate::sync::Arc;
use crate::ticker::{Jobs, SaveTo, Ticker};
use std::path::PathBuf;
use std::time::Duration;

/// The default cleanup interval of [`MemStore::new`](crate::MemStore::new): one minute, as in
/// scs.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
/// The default [`Builder::name`] of a store.
pub const DEFAULT_NAME: &str = "default";
/// The default limit on a token's length in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 256;
/// The default limit on a session's data in bytes (1 MiB).
pub const DEFAULT_MAX_DATA_LEN: usize = 1 << 20;

/// Configures and builds a [`MemStore`](crate::MemStore).
///
/// ```
/// use memsession::{ManualClock, MemStore};
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
    /// Whether a skiplist token index gets its hint table (tests may turn it off).
    hints: bool,
    #[cfg(feature = "test-hooks")]
    collide: bool,
    /// [`snapshot_every`](Self::snapshot_every): the interval and what to save to.
    snapshot: Option<(Duration, SaveTo)>,
    /// [`name`](Self::name).
    name: std::sync::Arc<str>,
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
            hints: true,
            #[cfg(feature = "test-hooks")]
            collide: false,
            snapshot: None,
            name: std::sync::Arc::from(DEFAULT_NAME),
        }
    }

    /// The store's name: the `store` field of its `tracing` events and (feature `metrics`)
    /// the `store` label of its metrics, to tell two stores in one process apart.
    /// [`DEFAULT_NAME`] by default.
    ///
    /// ```
    /// let store = memsession::MemStore::builder().name("sessions").build();
    /// # drop(store);
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = std::sync::Arc::from(name.into());
        self
    }

    /// How often a cleanup pass runs, on the store's background thread; [`Duration::ZERO`]
    /// runs none (expired sessions are still never returned; [`MemStore::cleanup_now`](crate::MemStore::cleanup_now)
    /// reclaims them).
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The clock that decides what has expired, and paces cleanup and periodic snapshots.
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
    /// use memsession::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::builder().max_sessions(2).build();
    /// let now = SystemTime::now();
    /// store.commit("a", "1", now + Duration::from_secs(10))?;
    /// store.commit("b", "2", now + Duration::from_secs(20))?;
    /// store.commit("c", "3", now + Duration::from_secs(30))?; // evicts "a", the soonest
    /// assert_eq!(store.find("a"), None);
    /// assert_eq!(store.len(), 2);
    /// # Ok::<(), memsession::Error>(())
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n.min(usize::MAX >> 1));
        self
    }

    /// Bounds the memory held: the tokens and data of every session held, plus
    /// [`SESSION_OVERHEAD`](crate::SESSION_OVERHEAD) per session (its node, version header and index entries), so a
    /// flood of tiny sessions is bounded too. Over the bound, the store does what
    /// [`when_full`](Self::when_full) says; a session that could not fit alone is refused
    /// with [`Error::ByteLimit`](crate::Error::ByteLimit) under either policy. Unbounded by default.
    ///
    /// The process's memory is more than the bound: freed sessions wait for the epoch (a
    /// writer that evicts helps free them), and the allocator keeps what it freed. A flood of
    /// random-sized sessions (0-8 KiB) at a 64 MiB bound grew RSS by about 1.5x the bound
    /// under glibc's default per-thread arenas, 1.13x with `MALLOC_ARENA_MAX=1`
    /// (BENCHMARKS.md).
    ///
    /// ```
    /// use memsession::{Error, MemStore, WhenFull, SESSION_OVERHEAD};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let max = 2 * SESSION_OVERHEAD + 20;
    /// let store = MemStore::builder().max_bytes(max).when_full(WhenFull::Refuse).build();
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// store.commit("t", "12345678", later)?; // 1 + 8 bytes + the overhead
    /// store.commit("u", "12", later)?; // 1 + 2 bytes + the overhead: 12 bytes + 2 overheads
    /// assert_eq!(store.commit("v", "", later), Err(Error::ByteLimit { max }));
    /// # Ok::<(), memsession::Error>(())
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

    /// The token index's structure ([`TokenIndex`]): the default skiplist, or (feature
    /// `hash-index`) scc's hash index: faster new sessions and cleanup, bucket-locked writes.
    ///
    /// ```
    /// use memsession::{MemStore, TokenIndex};
    /// let store = MemStore::builder().token_index(TokenIndex::SkipList).build();
    /// assert_eq!(store.stats().token_index, TokenIndex::SkipList);
    /// ```
    pub fn token_index(mut self, index: TokenIndex) -> Self {
        self.token_index = index;
        self
    }

    /// Whether the skiplist token index gets its hint table (on unless a test turns it off;
    /// feature `test-hooks`, not for users): tests and loom models run with and without.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn hint_table_for_tests(mut self, on: bool) -> Self {
        self.hints = on;
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

    /// Saves a snapshot to `path` every `interval` of the store's monotonic clock (a step of
    /// the wall clock does not delay it), each on a thread of its own so that cleanup never
    /// waits for a save, each replacing the last atomically ([`MemStore::save`](crate::MemStore::save)): a crash loses at most
    /// one interval of sessions. [`Duration::ZERO`] turns it off (the default). The first
    /// snapshot comes one interval after the store is built; dropping the store stops
    /// the snapshots (waiting for a save in flight) without a last save (call [`MemStore::save`](crate::MemStore::save) at shutdown). Each snapshot keeps
    /// one core busy for as long as the save takes (BENCHMARKS.md has the rates).
    /// [`MemStore::snapshot_status`](crate::MemStore::snapshot_status) reports how the snapshots went.
    ///
    /// ```
    /// use memsession::MemStore;
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join("memstore-every.snap");
    /// let store = MemStore::builder().snapshot_every(Duration::from_secs(60), &path).build();
    /// assert_eq!(store.snapshot_status().map(|s| s.taken), Some(0));
    /// ```
    pub fn snapshot_every(mut self, interval: Duration, path: impl Into<PathBuf>) -> Self {
        self.snapshot = (!interval.is_zero()).then(|| (interval, SaveTo::Path(path.into())));
        self
    }

    /// [`snapshot_every`](Self::snapshot_every) with `save` run in place of each save (feature
    /// `test-hooks`, not for users): its `Err` is a failed attempt, its `Ok` a save of nothing.
    /// For tests (and loom models) of the scheduling.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn snapshot_job_for_tests(
        mut self,
        interval: Duration,
        save: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.snapshot = (!interval.is_zero()).then(|| {
            let save: crate::ticker::TestSave = std::sync::Arc::new(save);
            (interval, SaveTo::Test(PathBuf::from("(test)"), save))
        });
        self
    }

    /// Builds the store and starts its background thread (unless the cleanup interval is zero
    /// and periodic snapshots are off).
    ///
    /// # Panics
    /// If the operating system cannot start the thread; see [`try_build`](Self::try_build).
    pub fn build(self) -> MemStore {
        match self.try_build() {
            Ok(s) => s,
            Err(e) => panic!("memstore: cannot start the background thread: {e}"),
        }
    }

    /// Builds the store, returning the error if the background thread cannot be started.
    ///
    /// # Errors
    /// The operating system's error from spawning the thread.
    ///
    /// ```
    /// let store = memsession::MemStore::builder().try_build()?;
    /// # drop(store);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_build(self) -> std::io::Result<MemStore> {
        let (config, jobs) = self.into_parts();
        let inner = Arc::new(raw::Store::new(config));
        let name = jobs.name.clone();
        let ticker = Ticker::start(&inner, jobs)?;
        Ok(MemStore {
            inner,
            ticker,
            name,
        })
    }

    /// The raw store's settings, and the background jobs.
    fn into_parts(self) -> (raw::Config, Jobs) {
        let name = self.name;
        let config = raw::Config {
            shards: self
                .shards
                .unwrap_or_else(default_shards)
                .clamp(1, 4096)
                .next_power_of_two(),
            token_index: self.token_index,
            clock: self.clock,
            max_token_len: self.max_token_len,
            max_data_len: self.max_data_len,
            max_sessions: self.max_sessions,
            max_bytes: self.max_bytes,
            when_full: self.when_full,
            hints: self.hints,
            #[cfg(feature = "test-hooks")]
            collide: self.collide,
        };
        let jobs = Jobs {
            name,
            cleanup: (!self.interval.is_zero()).then_some(self.interval),
            snapshot: self.snapshot,
        };
        (config, jobs)
    }
}

impl MemStore {
    /// A store with a cleanup pass every minute
    /// ([`DEFAULT_CLEANUP_INTERVAL`](crate::DEFAULT_CLEANUP_INTERVAL)), like scs's `New()`.
    ///
    /// # Panics
    /// If the operating system cannot start the background thread; [`Builder::try_build`]
    /// returns that error instead.
    ///
    /// ```
    /// let store = memsession::MemStore::new();
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
    /// let store = memsession::MemStore::with_cleanup_interval(Duration::ZERO);
    /// assert_eq!(store.stats().cleanup_passes, 0);
    /// ```
    pub fn with_cleanup_interval(interval: Duration) -> Self {
        Builder::new().cleanup_interval(interval).build()
    }

    /// A [`Builder`] for the clock, shard count, limits and cleanup interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = memsession::MemStore::builder()
    ///     .cleanup_interval(Duration::from_secs(10))
    ///     .max_data_len(64 * 1024)
    ///     .build();
    /// # drop(store);
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 4
}
