//! [`Tokens`]: the token index a store picked, one enum over the implementations, each call
//! passed to the one it holds.

#[cfg(feature = "hash-index")]
use super::hash_index::{key_of, HashTokens};
use super::key::{After, Key, Keyed};
use super::kind::TokenIndex;
use super::skiplist::{SkipEntry, SkipTokens};
use crate::sync::Guard;
use std::sync::Arc;

/// Where [`Tokens::locate`] found a node, for [`Tokens::unlink_located`].
pub(crate) enum Located<'g, N> {
    /// The skiplist entry that links the node.
    Skip(SkipEntry<'g, N>),
    /// Not looked for, not linked when looked for, or an index that does not keep the
    /// place: unlinking looks the node up again.
    Unknown,
}

impl<N> Located<'_, N> {
    /// No place known: [`Tokens::unlink_located`] looks the node up.
    pub(crate) fn unknown() -> Self {
        Located::Unknown
    }
}

/// The token index a store picked ([`TokenIndex`]).
// The skiplist (the default) is held inline: one pointer chase less per look-up.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Tokens<N> {
    Skip(SkipTokens<N>),
    #[cfg(feature = "hash-index")]
    Hash(HashTokens<N>),
}

macro_rules! each {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            Tokens::Skip($t) => $e,
            #[cfg(feature = "hash-index")]
            Tokens::Hash($t) => $e,
        }
    };
}

impl<N: Keyed> Tokens<N> {
    pub(crate) fn new(kind: TokenIndex) -> Self {
        match kind {
            TokenIndex::SkipList => Tokens::Skip(SkipTokens::new()),
            #[cfg(feature = "hash-index")]
            TokenIndex::HashIndex => Tokens::Hash(HashTokens::new()),
        }
    }

    /// Runs `f` with the node linked under `token`, if any: lock-free, no count bumped,
    /// no allocation.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        key: Key<'_>,
        guard: &Guard,
        f: impl FnOnce(&Arc<N>) -> R,
    ) -> Option<R> {
        each!(self, t => t.with(key, guard, f))
    }

    /// Whether a walk resumes from a position without collecting the index again.
    pub(crate) fn resumes(&self) -> bool {
        matches!(self, Tokens::Skip(_))
    }

    /// Links `node` if no node holds its token. `Err` with the node that holds it (`None`
    /// if that node was unlinked before it could be read: look again).
    pub(crate) fn insert(&self, node: &Arc<N>, guard: &Guard) -> Result<(), Option<Arc<N>>> {
        each!(self, t => t.insert(node, guard))
    }

    /// Unlinks `node` if it is the node linked under its token; `true` if this call did.
    pub(crate) fn unlink(&self, node: &Arc<N>, guard: &Guard) -> bool {
        each!(self, t => t.unlink(node, guard))
    }

    /// Where `node` is linked, looked up ahead of [`unlink_located`](Self::unlink_located):
    /// a batch's look-ups, independent of one another, overlap their cache misses.
    #[inline]
    pub(crate) fn locate<'g>(&'g self, node: &Arc<N>, guard: &'g Guard) -> Located<'g, N> {
        match self {
            Tokens::Skip(t) => t
                .locate(node, guard)
                .map_or(Located::Unknown, Located::Skip),
            #[cfg(feature = "hash-index")]
            Tokens::Hash(t) => {
                // Brings the node's bucket into the caches; a hash index unlinks by key.
                std::hint::black_box(t.with(key_of(&**node), guard, |_| ()));
                Located::Unknown
            }
        }
    }

    /// [`unlink`](Self::unlink), from where [`locate`](Self::locate) found `node` under the
    /// same guard: no second look-up of it.
    pub(crate) fn unlink_located(&self, node: &Arc<N>, at: Located<'_, N>, guard: &Guard) -> bool {
        match (self, at) {
            (Tokens::Skip(t), Located::Skip(e)) => t.unlink_at(e),
            (t, _) => t.unlink(node, guard),
        }
    }

    /// Calls `f(hash, node)` with each linked node after `after`, in `(hash, token)` order,
    /// until `f` returns `false`. Every node linked for the whole walk is seen once; one
    /// linked or unlinked meanwhile may or may not be.
    pub(crate) fn walk(
        &self,
        after: After<'_>,
        guard: &Guard,
        f: impl FnMut(u64, &Arc<N>) -> bool,
    ) {
        each!(self, t => t.walk(after, guard, f))
    }
}
