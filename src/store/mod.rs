//! The public facade: [`MemStore`] turns the caller's types (`&str`, `impl Into<Bytes>`,
//! `SystemTime`) into the raw store's (`raw/`), which does the work; [`Builder`] configures
//! it, [`Iter`] walks it and [`Stats`] reports on it.
//!
//! `memstore.rs` holds the session operations, `persist.rs` the snapshot methods, `builder.rs`
//! the settings, the build and the store's constructors.

mod builder;
mod iter;
mod memstore;
mod persist;
mod stats;

pub use builder::{
    Builder, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_DATA_LEN, DEFAULT_MAX_TOKEN_LEN, DEFAULT_NAME,
};
pub use iter::{Cursor, Iter};
pub use memstore::MemStore;
pub use stats::Stats;
