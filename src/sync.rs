//! The facade through which every atomic, lock, thread and epoch guard of the protocol goes.
//!
//! Two versions: the real one (std, crossbeam-epoch) and, under `cfg(memstore_loom)`, loom's
//! primitives, so that `loom-tests/` model-checks the code this crate ships. Nothing in the
//! protocol names `std::sync` or `crossbeam_epoch` directly; clock reads go through
//! [`Clock`](crate::Clock), whose manual implementation uses this facade's atomics.

#[cfg(not(memstore_loom))]
mod imp {
    pub(crate) use crossbeam_epoch::{pin, Guard};
    pub(crate) use std::sync::atomic::{fence, AtomicIsize, AtomicU64, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
}

#[cfg(memstore_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicIsize, AtomicU64, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Under loom there is no epoch: the stand-in indexes keep unlinked nodes until they drop
    /// (see `index.rs`) and retired versions live until their slot drops (see `slot.rs`), so
    /// nothing a guard could see is freed early, and a guard only has to exist to keep the
    /// signatures identical.
    #[derive(Debug)]
    pub(crate) struct Guard(());

    /// Pins nothing (see [`Guard`]).
    pub(crate) fn pin() -> Guard {
        Guard(())
    }
}

pub(crate) use imp::*;

/// Frees up to about `retired` objects that this thread retired to the epoch (versions,
/// expiry entries), once no guard can still see them.
///
/// crossbeam-epoch runs deferred frees in whichever thread's pin collects next (every 128th
/// pin collects up to 8 bags of 64), so without this a cleanup pass's garbage is freed inside
/// readers' `find`s: measured as the p99.9 and max of find latency while cleanup runs (see
/// BENCHMARKS.md). Each `flush` pushes this thread's bag, tries to advance the epoch and
/// collects up to 8 expired bags; the first two rounds let the epoch move past the pass.
#[cfg(not(memstore_loom))]
pub(crate) fn collect_retired(retired: u64) {
    const PER_FLUSH: u64 = 8 * 64;
    for _ in 0..2 + retired.div_ceil(PER_FLUSH) {
        crossbeam_epoch::pin().flush();
    }
}

/// Under loom nothing is retired to an epoch (see `slot.rs`).
#[cfg(memstore_loom)]
pub(crate) fn collect_retired(_retired: u64) {}

/// Runs `f`, catching a panic (the cleanup thread's pass: see `cleanup.rs`). `f` leaves
/// nothing half-done that the caller reads afterwards, hence `AssertUnwindSafe`.
#[cfg(not(memstore_loom))]
pub(crate) fn catch_unwind(f: impl FnOnce()) -> Result<(), ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| ())
}

/// Under loom a panic is a model failure (loom also unwinds to abort an execution): it
/// propagates, so that loom reports it.
#[cfg(memstore_loom)]
pub(crate) fn catch_unwind(f: impl FnOnce()) -> Result<(), ()> {
    f();
    Ok(())
}

/// Statistics counters (bytes held, hits, misses): outside the protocol, nothing decides
/// anything by them, so they are std atomics in both builds and add no loom interleavings.
pub(crate) type StatI64 = std::sync::atomic::AtomicI64;
/// See [`StatI64`].
pub(crate) type StatU64 = std::sync::atomic::AtomicU64;

/// `true` where a loom model has switched on the seeded protocol bug `$bug` (a
/// [`loom_bugs::Bug`] variant); a constant `false` in every other build, so the bug's code is
/// dead there. Each use sits at the exact line of the protocol the bug breaks.
macro_rules! seeded_bug {
    ($bug:ident) => {{
        #[cfg(memstore_loom)]
        let on = $crate::sync::loom_bugs::is_on($crate::sync::loom_bugs::Bug::$bug);
        #[cfg(not(memstore_loom))]
        let on = $crate::sync::no_seeded_bug(stringify!($bug));
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
        /// The cleanup thread checks the stop flag, releases the mutex and re-takes it before
        /// waiting: a stop in that window is lost and `stop_cleanup` never returns.
        StopCheckUnlocked,
        /// The cleanup thread reads the clock while holding its mutex: a clock that wakes the
        /// store under a lock of its own, which its readings also take, deadlocks with it.
        ClockReadLocked,
        /// The cleanup thread waits without checking whether the clock woke it since it read
        /// the clock (outside the mutex): a clock move in that window is lost.
        WakeUnchecked,
        /// The CAS winner that replaces a version never retires it: a leak.
        ReplaceLeaks,
        /// A shortening commit removes the entry at its old deadline and does not look again:
        /// a reschedule back to that deadline that reused the entry is left with none (I2).
        StaleNoRefile,
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

/// Locks `m`, ignoring poisoning: every critical section in this crate leaves its data valid at
/// every point (they only set flags and push or pop whole values), so a panic elsewhere never
/// leaves it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
