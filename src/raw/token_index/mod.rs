//! The token index, token -> node, with the small interface the protocol needs and nothing
//! more. By default a crossbeam-skiplist `base::SkipList` ordered by the keyed hash of the
//! token (held inline in the key, so a descent compares `u64`s and reads no other memory),
//! then by the token; with the `hash-index` feature a store may pick scc's `HashIndex`
//! instead ([`TokenIndex`]). Either way a node, once linked, is never replaced, and the
//! interface is the same: `with` (runs a closure on the node linked under a token;
//! guard-bound, no reference count bumped, no allocation), `insert` (insert-if-absent:
//! if a node holds the token, that node, so the caller needs no second look-up), `unlink` (remove
//! *this* node, never whatever node holds the token now; its `bool` says whether this call
//! did), `walk` (every linked node, in key order from a position).
//!
//! Under `cfg(memstore_loom)` it is a linearizable stand-in (a loom `Mutex<BTreeMap>`) with
//! the same interface: neither crate has loom support that covers our use, so loom explores
//! *our* protocol over the stand-in and trusts crossbeam-skiplist (and scc) for their own
//! linearizability (tested upstream).
//!
//! # Files
//! - `key.rs`: [`Key`] (a token and its keyed hash), the key order that walks follow, and
//!   token equality in constant time.
//! - `kind.rs`: [`TokenIndex`], the structure a store's builder picks.
//! - `dispatch.rs`: `Tokens`, the index a store picked, over the two implementations:
//!   `skiplist.rs` (crossbeam-skiplist) and `hash_index.rs` (scc, feature `hash-index`).
//! - `loom_map.rs`: the stand-in, which is `Tokens` under `cfg(memstore_loom)`.

mod key;
mod kind;

#[cfg(not(memstore_loom))]
mod dispatch;
#[cfg(all(feature = "hash-index", not(memstore_loom)))]
mod hash_index;
#[cfg(memstore_loom)]
mod loom_map;
#[cfg(not(memstore_loom))]
mod skiplist;

pub(crate) use key::{same_token, After, Key, Keyed};
pub use kind::TokenIndex;

#[cfg(not(memstore_loom))]
pub(crate) use dispatch::{Located, Tokens};
#[cfg(memstore_loom)]
pub(crate) use loom_map::{Located, Tokens};
