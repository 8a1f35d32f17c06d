//! The tower-sessions 0.15 `SessionStore` of [`NearCache`] (features `redis`, which enables
//! `tower-sessions`).
//!
//! Records are stored exactly as [`MemStoreSessions`](crate::tower_sessions::MemStoreSessions)
//! stores them (MessagePack, keyed by the id's string form), under the near-cache's Redis key
//! prefix, with the record's `expiry_date` as the deadline in both tiers. `create` is an
//! insert-if-absent in Redis (`SET ... NX`), so two app servers can never hand out one id;
//! `save` is an update-if-live (`SET ... XX`), so a request racing a logout cannot bring the
//! session back.
//!
//! The record codec, `create`'s draw-again loop and `save`'s update-if-live are
//! `MemStoreSessions`'s own (`crate::ecosystem::tower_record`), not copies.
//!
//! tower-sessions-redis-store is not reused: its current release still implements
//! tower-sessions-core 0.14's trait, not 0.15's.

use super::cache::NearCache;
use crate::ecosystem::tower_record::{self, backend};
use async_trait::async_trait;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::Result;
use tower_sessions_core::SessionStore;

/// Sessions shared by every app server through Redis, read from the local tier.
///
/// ```no_run
/// use memsession::redis::NearCache;
/// use tower_sessions_core::session::{Id, Record};
/// use tower_sessions_core::SessionStore;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = NearCache::connect("redis://127.0.0.1:6379").await?;
/// // Pass `store` to `tower_sessions::SessionManagerLayer::new`; or use it directly:
/// let mut record = Record {
///     id: Id::default(),
///     data: Default::default(),
///     expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
/// };
/// store.create(&mut record).await?;
/// assert_eq!(store.load(&record.id).await?, Some(record));
/// # Ok(())
/// # }
/// ```
#[async_trait]
impl SessionStore for NearCache {
    /// Inserts the record under a fresh id (`SET ... NX`), drawing a new `record.id` while
    /// Redis holds a live session under the current one.
    async fn create(&self, record: &mut Record) -> Result<()> {
        tower_record::create(record, |id, data, expiry| async move {
            self.commit_new(&id, data, expiry).await
        })
        .await
    }

    /// Updates the record only while its session is live in Redis (`SET ... XX`; an
    /// `expiry_date` in the past deletes it). tower-sessions calls `save` only for a session it
    /// loaded, so a session that is gone by now was deleted meanwhile (a logout, or
    /// `cycle_id` dropping the old id, on any instance): the save is then a no-op returning
    /// `Ok(())`, and the session stays deleted on every instance. (An upsert here would bring
    /// the logged-out session back, with its authenticated data.)
    async fn save(&self, record: &Record) -> Result<()> {
        tower_record::save(record, |id, data, expiry| async move {
            self.commit_existing(&id, data, expiry).await
        })
        .await
    }

    /// The live record, or `None` when missing or expired.
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.find(&id.to_string())
            .await
            .map_err(backend)?
            .map(|data| tower_record::decode(&data))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        NearCache::delete(self, &id.to_string())
            .await
            .map_err(backend)
    }
}
