//! A [tower-sessions] 0.15 session store backed by a [`MemStore`] (feature `tower-sessions`).
//!
//! tower-sessions' own `MemoryStore` never deletes an expired session; this one does, on the
//! store's own background thread, and its `create` is an atomic insert-if-absent
//! ([`MemStore::commit_new`]) that draws a new id on a collision, where a check-then-insert
//! could let two sessions share one id.
//!
//! - A record is stored under its id's string form (22 base64url characters), encoded with
//!   MessagePack (`rmp-serde`); its `expiry_date` becomes the store's deadline, so an expired
//!   session is never loaded, whether or not cleanup has reached it.
//! - `save` only replaces a live session ([`MemStore::commit_existing`], like redis's
//!   `SET XX`), never creates one. tower-sessions 0.15 calls `save` only for a session that
//!   has an id, i.e. one it loaded from the store (a new session, or one whose id
//!   `cycle_id` replaced, goes through `create`). So a request still in flight when the
//!   session is deleted (a logout, or `cycle_id` deleting the old id) does not bring it back
//!   with its data; that request's changes are dropped, and the client's next request with
//!   that cookie starts a fresh, empty session. It also means a client cannot get a session
//!   stored under an id of its choosing (session fixation) through a `Session` whose record
//!   was never loaded (`Session::clear` on an unloaded session keeps the cookie's id).
//! - `load` decodes in place (a zero-copy [`MemStore::find_with`]), `delete` removes.
//! - [`ExpiredDeletion::delete_expired`] runs one cleanup pass ([`MemStore::cleanup_now`]). The
//!   store's own thread already does that every cleanup interval, so there is no need to
//!   spawn tower-sessions' `continuously_delete_expired` task.
//!
//! [tower-sessions]: https://docs.rs/tower-sessions/0.15
//!
//! ```
//! use memsession::tower_sessions::MemStoreSessions;
//! use tower_sessions_core::session::{Id, Record};
//! use tower_sessions_core::{ExpiredDeletion, SessionStore};
//!
//! # async fn demo() -> Result<(), tower_sessions_core::session_store::Error> {
//! let store = MemStoreSessions::new(); // cleanup every minute on the store's thread
//! let mut record = Record {
//!     id: Id::default(),
//!     data: Default::default(),
//!     expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
//! };
//! store.create(&mut record).await?; // may draw a new `record.id` on a collision
//! assert_eq!(store.load(&record.id).await?, Some(record.clone()));
//! record.data.insert("user".to_owned(), serde_json::json!(42));
//! store.save(&record).await?; // replaces the live session
//! assert_eq!(store.load(&record.id).await?, Some(record.clone()));
//! store.delete(&record.id).await?; // a logout
//! assert_eq!(store.load(&record.id).await?, None);
//! store.save(&record).await?; // a request that was in flight: stores nothing
//! assert_eq!(store.load(&record.id).await?, None);
//! store.delete_expired().await?; // one pass now; the thread does this anyway
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use super::tower_record;
use crate::MemStore;
use async_trait::async_trait;
use std::future::ready;
use std::sync::Arc;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::Result;
use tower_sessions_core::{ExpiredDeletion, SessionStore};

/// A tower-sessions `SessionStore` over a shared [`MemStore`]: a cheap [`Clone`] handle.
///
/// Pass it to `tower_sessions::SessionManagerLayer::new`. See the [module docs](self) for how
/// records are stored and cleaned up.
///
/// ```
/// use memsession::{tower_sessions::MemStoreSessions, MemStore};
/// use std::time::Duration;
///
/// // Default: a store that cleans up every minute.
/// let sessions = MemStoreSessions::new();
/// // Or any configured store:
/// let sessions = MemStoreSessions::from(
///     MemStore::builder().cleanup_interval(Duration::from_secs(10)).build(),
/// );
/// let clone = sessions.clone(); // shares the store
/// assert!(clone.store().is_empty());
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

    /// The store: for stats, or to inspect sessions directly. Sessions are keyed by their
    /// id's string form.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    /// Saves every live session to `path`, atomically ([`MemStore::save`]): call it at
    /// shutdown, and [`load_snapshot`](Self::load_snapshot) at start, so that a restart keeps
    /// users logged in. The file holds bearer credentials: see [`crate::snapshot`].
    ///
    /// ```
    /// use memsession::tower_sessions::MemStoreSessions;
    /// let path = std::env::temp_dir().join(format!("memstore-tower-{}.snap", std::process::id()));
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

#[async_trait]
impl SessionStore for MemStoreSessions {
    /// Inserts the record under a fresh id: atomic insert-if-absent, drawing a new
    /// `record.id` while a live session holds the current one.
    async fn create(&self, record: &mut Record) -> Result<()> {
        tower_record::create(record, |id, data, expiry| {
            ready(self.store.commit_new(&id, data, expiry))
        })
        .await
    }

    /// Overwrites the record if a live session holds its id; its `expiry_date` is the
    /// session's deadline (one in the past deletes it). If no live session holds the id
    /// (deleted by a logout or `cycle_id` while this request ran, or expired), stores nothing
    /// and returns `Ok(())`: the session stays over (see the [module docs](self)).
    async fn save(&self, record: &Record) -> Result<()> {
        tower_record::save(record, |id, data, expiry| {
            ready(self.store.commit_existing(&id, data, expiry))
        })
        .await
    }

    /// The live record, or `None` when missing or expired.
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.store
            .find_with(&id.to_string(), tower_record::decode)
            .transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.store.delete(&id.to_string());
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for MemStoreSessions {
    /// One cleanup pass ([`MemStore::cleanup_now`]): O(expired sessions), never a scan. The
    /// store's own thread runs one every cleanup interval anyway.
    async fn delete_expired(&self) -> Result<()> {
        self.store.cleanup_now();
        Ok(())
    }
}
