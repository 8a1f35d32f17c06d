//! Session stores for web frameworks, each behind its own feature (off by default):
//!
//! - `tower-sessions`: [`crate::tower_sessions::MemStoreSessions`], a tower-sessions 0.15
//!   `SessionStore` + `ExpiredDeletion` (axum and any tower stack).
//! - `actix-session`: [`crate::actix_session::MemStoreSessions`], an actix-session 0.11
//!   `SessionStore`.
//!
//! Both are cheap `Clone` handles (an `Arc<MemStore>` inside): every clone, every worker and
//! every request shares one store. Expired sessions are reclaimed by the store's own cleanup
//! thread (every minute by default; see [`MemStore::builder`](crate::MemStore::builder)),
//! never by a task on the async runtime. No store operation waits on I/O or on another
//! thread for long (lock-free with the default token index; scc's bucket locks are held for
//! a bucket update with the hash index), so the adapters call the store inline from their
//! async methods without blocking the runtime.
//!
//! Session state is encoded with MessagePack (`rmp-serde`): smaller than JSON and quicker to
//! decode (BENCHMARKS.md). `postcard` would be smaller still, but it is not self-describing
//! (no `deserialize_any`), and tower-sessions' values are `serde_json::Value`s, which need
//! that.

#[cfg(feature = "actix-session")]
pub mod actix;
#[cfg(feature = "tower-sessions")]
pub mod tower;
#[cfg(feature = "tower-sessions")]
pub(crate) mod tower_record;
