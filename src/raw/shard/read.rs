//! The reads: a token's live version (`find`), the walks over live sessions, and the check
//! of the invariants at quiescence that tests call.

use super::state::Shard;
use crate::raw::token_index::{After, Key};
use crate::raw::version::Version;
use crate::sync::Guard;
#[cfg(feature = "test-hooks")]
use crate::sync::Ordering;

/// Why a look-up found no live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No session holds the token.
    Absent,
    /// The session's deadline has passed (cleanup has not reclaimed it yet).
    Expired,
}

impl Shard {
    /// The live version of `key`, or why there is none: I1.
    #[inline]
    pub(crate) fn find<'g>(
        &self,
        key: Key<'_>,
        now: impl FnOnce() -> u64,
        guard: &'g Guard,
    ) -> Result<&'g Version, Miss> {
        let cur = self
            .with_node(key, guard, |n| n.version.load(guard))
            .ok_or(Miss::Absent)?;
        let v = cur.get().ok_or(Miss::Absent)?;
        // The clock is read only for a hit, after the search: a miss costs no clock read, and
        // "now" is no earlier than the start of the call either way.
        // I1: compare the deadline read with now.
        if v.deadline > now() {
            Ok(v)
        } else {
            Err(Miss::Expired)
        }
    }

    /// The size (token + data) of the version `key` holds, live or expired; `None` if none.
    pub(crate) fn held_size(&self, key: Key<'_>, guard: &Guard) -> Option<usize> {
        let cur = self.with_node(key, guard, |n| n.version.load(guard))?;
        Some(key.token.len() + cur.get()?.data().len())
    }

    /// Calls `f(hash, token, version)` with each live session of this shard after `after`, in
    /// the token index's key order, until `f` returns `false`.
    pub(crate) fn walk_live(
        &self,
        after: After<'_>,
        now: u64,
        guard: &Guard,
        mut f: impl FnMut(u64, &str, &Version) -> bool,
    ) {
        self.walk(after, guard, |h, node| {
            match node.version.load(guard).get() {
                Some(v) if v.deadline > now => f(h, node.token(), v),
                _ => true,
            }
        });
    }

    /// Checks I2 and I5's bound on this shard; meaningful only when no operation is in
    /// flight. Returns the number of stale expiry entries.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn check_quiescent(&self, guard: &Guard) -> Result<usize, String> {
        let mut linked = 0usize;
        let mut bad = None;
        self.walk(None, guard, |_, node| {
            linked += 1;
            let s = node.scheduled.load(Ordering::Acquire);
            bad = match node.version.load(guard).get() {
                None => Some(format!(
                    "node {:#x} is a tombstone but still linked",
                    node.id()
                )),
                Some(v) if s > v.deadline => Some(format!(
                    "node {:#x}: scheduled {s} is after its deadline {}",
                    node.id(),
                    v.deadline
                )),
                Some(_) if self.expiry.get(&(s, node.id()), guard).is_none() => Some(format!(
                    "node {:#x}: no expiry entry at scheduled {s}",
                    node.id()
                )),
                Some(_) => None,
            };
            bad.is_none()
        });
        if let Some(bad) = bad {
            return Err(bad);
        }
        if linked != self.len() {
            return Err(format!(
                "{linked} nodes linked, but the shard counts {} sessions",
                self.len()
            ));
        }
        Ok(self.expiry.iter(guard).count().saturating_sub(linked))
    }
}
