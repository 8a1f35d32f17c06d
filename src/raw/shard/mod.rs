//! One shard: its two indexes and the protocol that keeps them consistent. Callers pass a
//! pinned guard and `now`; the raw store (`mod.rs`) routes, checks input and bounds, pins
//! and reads the clock.
//!
//! # Layout
//! Each shard (chosen by the top bits of a keyed ahash of the token) holds:
//! - `tokens`: token -> [`Node`], the token index (`token_index.rs`): skiplists split by the
//!   hash bits after the shard's, or one hash index. A node, once linked, is never replaced.
//! - `expiry`: `(deadline, node id)` -> the node (`Arc`, shared with the token index). One
//!   entry per session at or before its deadline ("lazy" expiry index); cleanup pops the
//!   front while `deadline <= now` and reaches the node through the entry, with no look-up.
//!
//! A node holds its token and keyed hash, `version` (a [`Slot`]: pointer to the current
//! [`Version`] or the tombstone) and `scheduled` (the deadline its expiry entry is filed at).
//! A version is its deadline and its data in one allocation (`version.rs`).
//! Its id is its address: an entry holds its node, so the address is not reused meanwhile.
//!
//! Every change to a node's version goes through one compare-and-swap loop,
//! [`Shard::update`]; `commit` and `commit_new` share one insert-or-update skeleton,
//! [`Shard::upsert`].
//!
//! # Invariants (see `DESIGN.md` at the crate root; `loom-tests/` checks each)
//! - **I1** `find` never returns a session whose deadline has passed (it compares the deadline
//!   it read with `now`), and never misses a session live for the whole call: overwrites swap
//!   the version pointer of the linked node, so the node is never absent.
//! - **I2** At quiescence every linked node has an entry at exactly `scheduled`, and
//!   `scheduled <=` its version's deadline. Kept by: fresh nodes file their entry after
//!   linking; shortening commits lower `scheduled` *then* file; cleanup reschedules by a CAS of
//!   `scheduled` from the popped deadline, *then* files, then re-reads the version (handshake).
//! - **I3** Cleanup and eviction only tombstone the version they examined (CAS on the slot;
//!   the epoch guard rules out ABA), so a commit that lands first survives.
//! - **I4** Per token, operations are linearizable at their slot CAS (or the insert that links
//!   a fresh node): last commit wins; a returned delete is not undone by an earlier commit,
//!   since a tombstone is final and a later commit links a new node.
//! - **I5** Stale entries (left by a racing shortening, or orphaned by a fresh commit racing a
//!   delete) are dropped when cleanup reaches them: an entry whose deadline is not its node's
//!   `scheduled` settles as stale, so it is harmless. A shortening commit removes its own
//!   old entry at once (`drop_stale`).
//!
//! # The commit/cleanup handshake
//! A commit writes the version and then reads `scheduled`; a cleanup reschedule writes
//! `scheduled` and then reads the version. Each of those reads is a read-modify-write
//! (`fetch_add(0)` on `scheduled`, a self-CAS on the slot) with acquire-release ordering, so
//! it reads the newest value in that location's modification order and synchronizes with the
//! write before it: whichever side's RMW on `scheduled` comes second sees the other's write.
//! (Two `SeqCst` fences would do too; RMWs give the guarantee without relying on how a
//! checker models fences, and cost one uncontended RMW on a line the CAS already owns.)

mod cleanup;
mod commit;
mod read;
mod schedule;
mod state;
mod update;

pub(crate) use cleanup::{Settled, Swept};
pub(crate) use read::Miss;
pub(crate) use state::Shard;
