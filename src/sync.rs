//! The facade through which every atomic, lock, thread and epoch guard of the protocol goes.
//!
//! Two versions: the real one (std, crossbeam-epoch) and, under `cfg(memstore_loom)`, loom's
//! primitives, so that `loom-tests/` model-checks the code this crate ships. Nothing in the
//! protocol names `std::sync` or `crossbeam_epoch` directly; clock reads go through
//! [`Clock`](crate::Clock), whose manual implementation uses this facade's atomics.

#[cfg(not(memstore_loom))]
mod imp {
    pub(crate) use crossbeam_epoch::{pin, Guard};
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
}

#[cfg(memstore_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Under loom there is no epoch: the stand-in indexes hand out reference-counted entries
    /// and retired versions live until their slot is dropped (see `slot.rs`), so a guard only
    /// has to exist to keep the signatures identical.
    #[derive(Debug)]
    pub(crate) struct Guard(());

    /// Pins nothing (see [`Guard`]).
    pub(crate) fn pin() -> Guard {
        Guard(())
    }
}

pub(crate) use imp::*;

/// Locks `m`, ignoring poisoning: every critical section in this crate leaves its data valid at
/// every point (they only set flags and push or pop whole values), so a panic elsewhere never
/// leaves it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
