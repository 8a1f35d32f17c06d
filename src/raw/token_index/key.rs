//! The token index's key: a token and its keyed hash, the order every implementation keeps
//! (by hash, then by token), and token equality in constant time.

/// A borrowed key: a token and its keyed hash, with no allocation. Look-ups take it, and a
/// walk resumes after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key<'a> {
    /// The token's keyed hash: orders the index; its top bits pick the shard.
    pub(crate) hash: u64,
    pub(crate) token: &'a [u8],
}

/// What the token index needs of a node: its keyed hash and its token.
pub(crate) trait Keyed: Send + Sync + 'static {
    fn key_hash(&self) -> u64;
    fn key_token(&self) -> &[u8];
}

/// Token equality in time that depends only on the lengths: a look-up never reveals how
/// much of a stored token a guess matched.
#[inline]
pub(crate) fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && constant_time_eq::constant_time_eq(a, b)
}

/// A position in the token index's key order: a walk resumes after this key (`None`: from
/// the start).
pub(crate) type After<'a> = Option<Key<'a>>;

/// Whether the key `(hash, token)` comes after the position `after`.
#[inline]
pub(super) fn is_after(hash: u64, token: &[u8], after: After<'_>) -> bool {
    after.is_none_or(|a| Key { hash, token } > a)
}
