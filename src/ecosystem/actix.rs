//! An [actix-session] 0.11 session store backed by a [`MemStore`] (feature `actix-session`).
//!
//! actix-session has no in-memory store of its own; this one keeps sessions in the process,
//! reclaims expired ones on the store's own background thread, and never blocks a worker.
//!
//! - Keys: [`generate_token`](crate::generate_token): 256 bits from the operating system's
//!   CSPRNG, as 43 base64url characters, inserted with [`MemStore::commit_new`] (atomic
//!   insert-if-absent; a collision draws another key). Under actix-session's default cookie
//!   security the key is also encrypted in the cookie.
//! - The state map is encoded with MessagePack (`rmp-serde`).
//! - A time-to-live is counted from the store's clock ([`MemStore::now`]), so a
//!   [`ManualClock`](crate::ManualClock) drives expiry in tests. A time-to-live of zero or
//!   less is refused by `save` and `update` with [`TtlNotPositive`] (such a session would be
//!   over at once: `save` would return a key under which nothing is stored), as
//!   actix-session's redis store refuses it (redis rejects `SET ... EX 0`); `update_ttl`
//!   with one ends the session, as redis's `EXPIRE` does.
//! - `update` only overwrites a live session ([`MemStore::commit_existing`], like the redis
//!   store's `SET XX`): a session that expired or was purged meanwhile is not brought back;
//!   the state is saved under a new key instead, as the redis store does. `update_ttl` keeps
//!   the data of whichever version it replaces ([`MemStore::touch`]), so it never undoes a
//!   concurrent request's update.
//!
//! [actix-session]: https://docs.rs/actix-session/0.11
//!
//! ```
//! use actix_session::storage::SessionStore;
//! use memsession::actix_session::MemStoreSessions;
//! use std::collections::HashMap;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let store = MemStoreSessions::new();
//! let ttl = actix_web::cookie::time::Duration::minutes(30);
//! let state = HashMap::from([("user".to_owned(), "\"42\"".to_owned())]);
//! let key = store.save(state.clone(), &ttl).await?;
//! assert_eq!(store.load(&key).await?, Some(state));
//! store.delete(&key).await?;
//! assert_eq!(store.load(&key).await?, None);
//! # Ok(())
//! # }
//! # actix_web::rt::System::new().block_on(demo()).unwrap();
//! ```

use crate::MemStore;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// actix-session's session state (its `SessionState`): key to JSON-encoded value.
type State = HashMap<String, String>;

/// An actix-session `SessionStore` over a shared [`MemStore`]: a cheap [`Clone`] handle.
///
/// Pass a clone to `actix_session::SessionMiddleware::new` in each worker's `App`. See the
/// [module docs](self) for keys, encoding and cleanup.
///
/// ```
/// use memsession::{actix_session::MemStoreSessions, MemStore};
/// use std::time::Duration;
///
/// let sessions = MemStoreSessions::from(
///     MemStore::builder().cleanup_interval(Duration::from_secs(10)).build(),
/// );
/// let for_a_worker = sessions.clone(); // shares the store
/// assert!(for_a_worker.store().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct MemStoreSessions {
    store: Arc<MemStore>,
}

impl MemStoreSessions {
    /// A handle to a new [`MemStore::new`] (cleanup every minute on its own thread).
    ///
    /// # Panics
    /// As [`MemStore::new`].
    pub fn new() -> Self {
        MemStore::new().into()
    }

    /// The store: for stats, or to inspect sessions directly (keyed by session key).
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    /// The store's now plus `ttl`, for a `ttl` that must be positive (`save`, `update`).
    fn positive_expiry(&self, ttl: &time::Duration) -> anyhow::Result<SystemTime> {
        if !ttl.is_positive() {
            return Err(anyhow::Error::new(TtlNotPositive { ttl: *ttl }));
        }
        self.expiry(ttl)
    }

    /// Saves every live session to `path`, atomically ([`MemStore::save`]): call it at
    /// shutdown, and [`load_snapshot`](Self::load_snapshot) at start, so that a restart keeps
    /// users logged in. The file holds bearer credentials: see [`crate::snapshot`].
    ///
    /// ```
    /// use memsession::actix_session::MemStoreSessions;
    /// let path = std::env::temp_dir().join(format!("memstore-actix-{}.snap", std::process::id()));
    /// let sessions = MemStoreSessions::new();
    /// sessions.save_snapshot(&path)?;
    /// let restarted = MemStoreSessions::new();
    /// assert_eq!(restarted.load_snapshot(&path)?.loaded, 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_snapshot(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> std::result::Result<crate::SaveReport, crate::SnapshotError> {
        self.store.save(path)
    }

    /// Puts a snapshot's sessions into the store ([`MemStore::load`]): insert-if-absent,
    /// expired ones skipped. See [`save_snapshot`](Self::save_snapshot).
    pub fn load_snapshot(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> std::result::Result<crate::LoadReport, crate::SnapshotError> {
        self.store.load(path)
    }

    /// The store's now plus `ttl`; a negative `ttl` is now (the session is over at once).
    fn expiry(&self, ttl: &time::Duration) -> anyhow::Result<SystemTime> {
        let ttl = std::time::Duration::try_from(*ttl).unwrap_or_default();
        self.store
            .now()
            .checked_add(ttl)
            .ok_or_else(|| anyhow::Error::new(crate::Error::ExpiryOutOfRange))
    }
}

impl Default for MemStoreSessions {
    fn default() -> Self {
        MemStoreSessions::new()
    }
}

impl From<MemStore> for MemStoreSessions {
    fn from(store: MemStore) -> Self {
        MemStoreSessions {
            store: Arc::new(store),
        }
    }
}

impl From<Arc<MemStore>> for MemStoreSessions {
    fn from(store: Arc<MemStore>) -> Self {
        MemStoreSessions { store }
    }
}

/// The error of `save` and `update` for a time-to-live of zero or less, inside
/// `SaveError::Other` or `UpdateError::Other`: no session is stored (`save` returns no key
/// for a session that was never stored) and `update` leaves the session as it was. Such a
/// time-to-live is a misconfiguration (actix-session's redis store refuses it too).
///
/// ```
/// use actix_session::storage::{SaveError, SessionStore};
/// use memsession::actix_session::{MemStoreSessions, TtlNotPositive};
///
/// # async fn demo() {
/// let store = MemStoreSessions::new();
/// let ttl = actix_web::cookie::time::Duration::ZERO;
/// let Err(SaveError::Other(e)) = store.save(Default::default(), &ttl).await else {
///     panic!("a session over at once was saved");
/// };
/// assert_eq!(e.downcast_ref(), Some(&TtlNotPositive { ttl }));
/// assert!(store.store().is_empty());
/// # }
/// # actix_web::rt::System::new().block_on(demo());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlNotPositive {
    /// The time-to-live asked for.
    pub ttl: time::Duration,
}

impl std::fmt::Display for TtlNotPositive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session time-to-live {} is not positive: the session would be over at once",
            self.ttl
        )
    }
}

impl std::error::Error for TtlNotPositive {}

/// Whether the store refused `e` because of the key (it cannot hold such a session).
fn bad_key(e: &crate::Error) -> bool {
    matches!(
        e,
        crate::Error::EmptyToken | crate::Error::TokenTooLong { .. }
    )
}

impl SessionStore for MemStoreSessions {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        self.store
            .find_with(key.as_ref(), |b| rmp_serde::from_slice::<State>(b))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(&self, state: State, ttl: &time::Duration) -> Result<SessionKey, SaveError> {
        let data = rmp_serde::to_vec(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let expiry = self.positive_expiry(ttl).map_err(SaveError::Other)?;
        loop {
            let key = crate::generate_token().map_err(|e| SaveError::Other(e.into()))?;
            let inserted = self
                .store
                .commit_new(&key, data.clone(), expiry)
                .map_err(|e| SaveError::Other(e.into()))?;
            if inserted {
                return SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()));
            }
        }
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let data = rmp_serde::to_vec(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let expiry = self.positive_expiry(ttl).map_err(UpdateError::Other)?;
        match self.store.commit_existing(key.as_ref(), data, expiry) {
            Ok(true) => Ok(key),
            // Expired, purged or never ours: a new session under a new key.
            Ok(false) => self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            }),
            Err(e) if bad_key(&e) => self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            }),
            Err(e) => Err(UpdateError::Other(e.into())),
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &time::Duration) -> anyhow::Result<()> {
        let expiry = self.expiry(ttl)?;
        match self.store.touch(key.as_ref(), expiry) {
            Ok(_) => Ok(()),
            Err(e) if bad_key(&e) => Ok(()), // no such session can exist
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.store.delete(key.as_ref());
        Ok(())
    }
}
