//! The facade through which every atomic, lock, thread and epoch guard of the protocol goes.
//!
//! Two versions: the real one (std, crossbeam-epoch) and, under `cfg(memstore_loom)`, loom's
//! primitives, so that `loom-tests/` model-checks the code this crate ships. Clock reads go
//! through [`Clock`](crate::Clock), whose manual implementation uses this facade's atomics.
//!
//! The rule: every atomic, lock, thread and guard whose interleaving a protocol step depends
//! on (a version slot, `scheduled`, a hint-table way, a bounded store's `Usage`, the ticker's
//! state and condition variables, the manual clock) comes from here. Code may name `std::sync`
//! (or `crossbeam_epoch`) directly only where loom has nothing to explore:
//! - `std::sync::Arc` for nodes (`raw/shard/`, `raw/hints.rs`, the indexes) and for handles
//!   shared by the store's parts (`Usage`, the ticker's shared state, clock wakers; `clock.rs`'s
//!   `OnceLock` for the monotonic origin): a count decides no step. Under loom the stand-in
//!   indexes keep every unlinked node until they drop, so no node's count reaches zero within
//!   a model, and a loom `Arc` would only add branch points.
//! - statistics counters ([`StatI64`], [`StatU64`], the read counters' stripes, with
//!   `std::sync::atomic::Ordering::Relaxed`): nothing decides anything by them.
//! - bookkeeping inside the loom stand-ins (`std::sync::Mutex` lists of unlinked nodes and
//!   retired versions), outside the model by design.
//! - the ticker's `cancel` flag, polled by a save between shards, and what runs outside the
//!   store's protocol altogether (a snapshot load's worker threads, the `redis` near-cache).
//! - `crossbeam_epoch` in the modules that have a loom implementation of their own beside it
//!   (`raw/slot.rs`, the two indexes, the hint table's table pointer).

#[cfg(not(memstore_loom))]
mod imp {
    pub(crate) use crossbeam_epoch::{pin, Guard};
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering,
    };
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
}

#[cfg(memstore_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering,
    };
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Under loom there is no epoch: the stand-in indexes keep unlinked nodes until they drop
    /// (`raw/token_index/`, `raw/expiry_index.rs`) and retired versions live until their
    /// slot drops (`raw/slot.rs`), so nothing a guard could see is freed early, and a guard
    /// only has to exist to keep the signatures identical.
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
/// benches/HISTORY.md). Each `flush` pushes this thread's bag, tries to advance the epoch and
/// collects up to 8 expired bags; the first two rounds let the epoch move past the pass.
#[cfg(not(memstore_loom))]
pub(crate) fn collect_retired(retired: u64) {
    const PER_FLUSH: u64 = 8 * 64;
    for _ in 0..2 + retired.div_ceil(PER_FLUSH) {
        crossbeam_epoch::pin().flush();
    }
}

/// Under loom nothing is retired to an epoch (see `raw/slot.rs`).
#[cfg(memstore_loom)]
pub(crate) fn collect_retired(_retired: u64) {}

/// Evictions a thread settles before it helps the epoch collect (see [`help_collect`]).
#[cfg(not(memstore_loom))]
const HELP_EVERY: u64 = 64;

/// Counts `popped` expiry entries that evictions on this thread settled and, every
/// [`HELP_EVERY`], frees what they retired as a cleanup pass does. An eviction retires about
/// four objects (a version, an expiry entry, a token index node, a hint's count) per commit,
/// as fast as crossbeam-epoch's own pace frees them (every 128th pin, at most 512 objects), so
/// under a flood at the byte bound the backlog grew without limit (benches/flood_rss.rs).
/// Called with no guard held, so that the epoch can move past this thread's retirements.
#[cfg(not(memstore_loom))]
pub(crate) fn help_collect(popped: u64) {
    use std::cell::Cell;
    thread_local! {
        static POPPED: Cell<u64> = const { Cell::new(0) };
    }
    if popped == 0 {
        return;
    }
    let due = POPPED.with(|p| {
        let n = p.get() + popped;
        p.set(if n >= HELP_EVERY { 0 } else { n });
        n >= HELP_EVERY
    });
    if due {
        collect_retired(4 * HELP_EVERY);
    }
}

/// Under loom nothing is retired to an epoch.
#[cfg(memstore_loom)]
pub(crate) fn help_collect(_popped: u64) {}

/// Drops `value` once every thread pinned now has unpinned (the hint table's retirement of
/// a node's `Arc`: `raw/hints.rs`).
#[cfg(not(memstore_loom))]
#[inline]
pub(crate) fn defer_drop<T: Send + 'static>(guard: &Guard, value: T) {
    guard.defer(move || drop(value));
}

/// Under loom the stand-in indexes keep every unlinked node until they drop, so the value
/// is dropped at once; the quiescent check (`raw/hints.rs`) is what finds a hint left to a
/// tombstoned node.
#[cfg(memstore_loom)]
pub(crate) fn defer_drop<T: Send + 'static>(_guard: &Guard, value: T) {
    drop(value);
}

/// Runs `f`, catching a panic (the ticker's jobs: see `ticker.rs`); the panic's message on
/// one. `f` leaves nothing half-done that the caller reads afterwards, hence
/// `AssertUnwindSafe`.
#[cfg(not(memstore_loom))]
pub(crate) fn catch_unwind<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic without a message)".to_owned()
        }
    })
}

/// Under loom a panic is a model failure (loom also unwinds to abort an execution): it
/// propagates, so that loom reports it.
#[cfg(memstore_loom)]
pub(crate) fn catch_unwind<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    Ok(f())
}

/// Statistics counters (bytes held, hits, misses): outside the protocol, nothing decides
/// anything by them, so they are std atomics in both builds and add no loom interleavings.
pub(crate) type StatI64 = std::sync::atomic::AtomicI64;
/// See [`StatI64`].
pub(crate) type StatU64 = std::sync::atomic::AtomicU64;

/// Locks `m`, ignoring poisoning: every critical section in this crate leaves its data valid at
/// every point (they only set flags and push or pop whole values), so a panic elsewhere never
/// leaves it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
