//! One shard: its two indexes and the protocol that keeps them consistent. Callers pass a
//! pinned guard and `now`; the raw store (`raw/mod.rs`) routes, checks input and bounds, pins
//! and reads the clock.
//!
//! # Layout
//! Each shard (chosen by the top bits of a keyed ahash of the token) holds:
//! - `tokens`: token -> node, the token index (`raw/token_index/`): skiplists split by the
//!   hash bits after the shard's, or one hash index. A node, once linked, is never replaced.
//! - `expiry`: `(deadline, node id)` -> the node (`Arc`, shared with the token index). One
//!   entry per session at or before its deadline ("lazy" expiry index); cleanup pops the
//!   front while `deadline <= now` and reaches the node through the entry, with no look-up.
//! - `hints`: token -> node with no descent (`raw/hints.rs`); with the skiplist index only.
//!
//! A node (`raw/node.rs`) holds its token and keyed hash, `version` (a slot: pointer to the
//! current version or the tombstone) and `scheduled` (the deadline its expiry entry is filed
//! at). A version is its deadline and its data in one allocation (`raw/version.rs`). A node's
//! id is its address: an entry holds its node, so the address is not reused meanwhile.
//!
//! # Files
//! - `state.rs`: the [`Shard`] itself (both indexes, the hint table, the counts), the ways to a
//!   node (the token index that holds a hash, the look-up through the hints, the walk in key
//!   order) and the accounting.
//! - `update.rs`: the one compare-and-swap loop that every change to a node's version goes
//!   through, `Shard::update`.
//! - `schedule.rs`: keeping a node's expiry entry at its `scheduled` deadline (`lower`, `file`).
//! - `commit.rs`: the writes (`commit`, `commit_new`, `replace_live`, `delete`, `clear`), over
//!   one insert-or-update skeleton, `Shard::upsert`.
//! - `read.rs`: `find`, the walks over live sessions, the quiescence check for tests.
//! - `cleanup.rs`: cleanup and eviction, which pop due expiry entries and settle each.
//!
//! The invariants I1-I5, the step order and the commit/cleanup handshake: `DESIGN.md`.

mod cleanup;
mod commit;
mod read;
mod schedule;
mod state;
mod update;

pub(crate) use cleanup::{Settled, Swept};
pub(crate) use commit::Unfiled;
pub(crate) use read::Miss;
pub(crate) use state::Shard;
