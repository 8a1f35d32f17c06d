//! One shard: its two indexes and the protocol that keeps them consistent. `state.rs` holds
//! the shard and its commit, read and delete steps; `cleanup.rs` its cleanup and eviction.

mod cleanup;
mod state;

pub(crate) use cleanup::{Settled, Swept};
pub(crate) use state::{Miss, Shard};
