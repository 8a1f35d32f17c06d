//! What the two tower-sessions 0.15 stores share (feature `tower-sessions`):
//! [`MemStoreSessions`](crate::tower_sessions::MemStoreSessions) over a [`MemStore`](crate::MemStore),
//! and the Redis near-cache's store (feature `redis`, `src/redis/tower.rs`).
//!
//! - The record codec: a `Record` is stored as MessagePack ([`encode`], [`decode`]), under its
//!   id's string form, with its `expiry_date` as the deadline.
//! - `create`'s loop ([`create`]): an atomic insert-if-absent (`commit_new`) that draws a new
//!   id on a collision, until one is free.
//! - `save` ([`save`]): an update-if-live (`commit_existing`) that never creates a session.
//!
//! Each store passes its own `commit_new`/`commit_existing` as a closure returning a future
//! (a ready one for the synchronous [`MemStore`](crate::MemStore)), so the loop and the codec
//! are written once.

use std::fmt::Display;
use std::future::Future;
use std::time::SystemTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{Error, Result};

/// A record's stored form (MessagePack).
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>> {
    rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))
}

/// The inverse of [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Record> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// A backend's error (the store's, or the near-cache's), as tower-sessions reports it.
pub(crate) fn backend(e: impl Display) -> Error {
    Error::Backend(e.to_string())
}

/// Inserts `record` under a fresh id: `commit_new(id, data, expiry)` is an atomic
/// insert-if-absent returning whether it inserted; while it finds the id taken, a new
/// `record.id` is drawn and the record encoded again (the id is part of it).
pub(crate) async fn create<F, Fut, E>(record: &mut Record, mut commit_new: F) -> Result<()>
where
    F: FnMut(String, Vec<u8>, SystemTime) -> Fut,
    Fut: Future<Output = std::result::Result<bool, E>>,
    E: Display,
{
    let expiry = SystemTime::from(record.expiry_date);
    loop {
        let data = encode(record)?;
        if commit_new(record.id.to_string(), data, expiry)
            .await
            .map_err(backend)?
        {
            return Ok(());
        }
        record.id = Id::default();
    }
}

/// Overwrites `record` only while a live session holds its id: `commit_existing(id, data,
/// expiry)` is an update-if-live (an expiry in the past deletes). Whether it found one is
/// dropped: a session gone meanwhile stays gone, and the save is `Ok(())`.
pub(crate) async fn save<Fut, E>(
    record: &Record,
    commit_existing: impl FnOnce(String, Vec<u8>, SystemTime) -> Fut,
) -> Result<()>
where
    Fut: Future<Output = std::result::Result<bool, E>>,
    E: Display,
{
    let data = encode(record)?;
    commit_existing(
        record.id.to_string(),
        data,
        SystemTime::from(record.expiry_date),
    )
    .await
    .map(drop)
    .map_err(backend)
}
