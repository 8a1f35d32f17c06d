//! A session's node: its token and keyed hash, its version slot and the deadline its expiry
//! entry is filed at. Held (`Arc`) by the token index, the node's expiry entries and the hint
//! table's ways; freed when the last of them lets go.

use super::slot::Slot;
use super::token_index::Keyed;
use super::version::Version;
use crate::sync::AtomicU64;
use smallvec::SmallVec;

/// Tokens up to this many bytes live inside their node (scs tokens are 43 characters): one
/// allocation and one cache miss less per session than a boxed token.
const INLINE_TOKEN: usize = 48;

/// A session's node in the primary index. Shared (`Arc`) by the primary index and the
/// node's expiry entries, so cleanup reaches the node from its entry without a look-up; it
/// is freed when the last of them lets go.
pub(crate) struct Node {
    pub(super) hash: u64,
    pub(super) version: Slot<Version>,
    pub(super) scheduled: AtomicU64,
    pub(super) token: SmallVec<[u8; INLINE_TOKEN]>,
}

impl Keyed for Node {
    #[inline]
    fn key_hash(&self) -> u64 {
        self.hash
    }
    #[inline]
    fn key_token(&self) -> &[u8] {
        &self.token
    }
}

impl Node {
    /// The node's identity in its expiry entries: its address. Unique among the entries in
    /// the index at any time, with no ABA: each entry holds an `Arc` of its node, so a node's
    /// address cannot be reused while an entry names it.
    #[inline]
    pub(super) fn id(&self) -> usize {
        self as *const Node as usize
    }

    /// The token: built from a `&str`, so always UTF-8 (an empty string is unreachable).
    pub(crate) fn token(&self) -> &str {
        std::str::from_utf8(&self.token).unwrap_or_default()
    }
}
