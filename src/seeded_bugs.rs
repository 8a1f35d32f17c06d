//! Seeded protocol bugs: switches that `loom-tests/` turns on, one at a time, to show that a
//! model fails when one step of the protocol is broken (a model that cannot fail proves
//! nothing). Each use of [`seeded_bug!`] reads as one alternate statement beside the honest
//! path it breaks; outside loom builds the switch is a constant `false`, so the alternate is
//! dead code.

/// `true` where a loom model has switched on the seeded protocol bug `$bug` (a
/// [`loom_bugs::Bug`] variant); a constant `false` in every other build, so the bug's code is
/// dead there. Each use sits at the exact line of the protocol the bug breaks.
macro_rules! seeded_bug {
    ($bug:ident) => {{
        #[cfg(memstore_loom)]
        let on = $crate::seeded_bugs::loom_bugs::is_on($crate::seeded_bugs::loom_bugs::Bug::$bug);
        #[cfg(not(memstore_loom))]
        let on = $crate::seeded_bugs::no_seeded_bug(stringify!($bug));
        on
    }};
}
pub(crate) use seeded_bug;

/// [`seeded_bug!`] outside loom builds: always `false` (a call, not a literal, so that lints
/// do not read two different bugs' switches as one repeated constant).
#[cfg(not(memstore_loom))]
#[inline(always)]
pub(crate) const fn no_seeded_bug(_bug: &str) -> bool {
    false
}

/// Seeded protocol bugs for `loom-tests/`: each breaks one step of the protocol, and a model
/// must fail with it switched on (a model that cannot fail proves nothing). Exists only
/// under `cfg(memstore_loom)`. The switch is per OS thread: loom runs every model thread on
/// the thread that called `loom::model`, so tests running in parallel do not see each
/// other's bugs.
#[cfg(memstore_loom)]
pub mod loom_bugs {
    use std::cell::Cell;

    /// One deliberate protocol bug; the doc says which step it breaks.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum Bug {
        /// Commit's lowering step files the entry *before* lowering `scheduled`: cleanup can
        /// pop the new entry, see `scheduled` differ and drop it as stale (I2).
        FileBeforeLower,
        /// Commit's lowering step lowers `scheduled` but files no entry (I2).
        LowerWithoutFiling,
        /// Cleanup tombstones whatever the slot holds when it gets there, not the version it
        /// examined (no CAS on the examined version): a commit that landed first is lost (I3).
        TombstoneUnexamined,
        /// Cleanup's reschedule skips the handshake re-read of the version: a shortening
        /// commit that read the old `scheduled` files nothing (I2).
        NoHandshakeRecheck,
        /// Both handshake reads are plain loads, not read-modify-writes (store buffering: each
        /// side may miss the other's write) (I2).
        HandshakePlainLoads,
        /// An overwrite unlinks the token's node and links a new one (crossbeam #1023's
        /// remove-then-insert): a `find` in between misses a live session (I1).
        OverwriteRemoveInsert,
        /// The ticker thread checks the stop flag, releases the mutex and re-takes it before
        /// waiting: a stop in that window is lost and `stop_cleanup` never returns.
        StopCheckUnlocked,
        /// The ticker thread reads the clock while holding its mutex: a clock that wakes the
        /// store under a lock of its own, which its readings also take, deadlocks with it.
        ClockReadLocked,
        /// The ticker thread waits without checking whether the clock woke it since it read
        /// the clock (outside the mutex): a clock move in that window is lost.
        WakeUnchecked,
        /// The CAS winner that replaces a version never retires it: a leak.
        ReplaceLeaks,
        /// A shortening commit removes the entry at its old deadline and does not look again:
        /// a reschedule back to that deadline that reused the entry is left with none (I2).
        StaleNoRefile,
        /// The thread that tombstones a node leaves its hint in the hint table: the hint (and
        /// its count) outlives the session (H2).
        HintNotCleared,
        /// A hint is published with no look for a tombstone afterwards: a hint published for
        /// a node already unlinked, which its clearer may have missed (H2).
        HintNoRecheck,
        /// A publish that evicts another hint never releases the evicted hint's count: its
        /// node, and the versions it holds, leak (H1).
        HintCountLost,
        /// The thread that tombstones a node clears its hint from the home bucket only, not
        /// from the buddy a full home overflows to: that hint outlives the session (H2).
        HintBuddyNotCleared,
        /// A snapshot load's window forgets the expiry entries it deferred: its fresh
        /// sessions are linked with no entry, so cleanup never reclaims them (I2).
        UnfiledNeverFiled,
        /// A look-up follows a hint whose tag matches without comparing hash and token: a
        /// read of another token's session (H3).
        HintUnchecked,
        /// Cleanup unlinks the place it located an expired node at by the token, not by the
        /// node (as a crossbeam `SkipList::remove(key)` would: keys compare by hash and
        /// token): if a helper unlinked the tombstoned node and a commit linked a new one for
        /// the token meanwhile, the commit's session is unlinked (I3, I4). Seeded in the loom
        /// stand-in's `unlink_located`, which stands for crossbeam's `Entry::remove`.
        UnlinkByToken,
        /// The ticker runs a due snapshot's save on its own thread instead of handing it to
        /// a save thread: a slow save delays every cleanup pass due meanwhile.
        SnapshotInline,
    }

    thread_local! {
        static ON: Cell<Option<Bug>> = const { Cell::new(None) };
    }

    /// Switches `bug` on (or every bug off, with `None`) for models run on this thread.
    pub fn set(bug: Option<Bug>) {
        ON.with(|b| b.set(bug));
    }

    /// Whether `bug` is on for this thread.
    pub fn is_on(bug: Bug) -> bool {
        ON.with(|b| b.get() == Some(bug))
    }
}
