//! The background cleanup thread: one sweep every interval of the store's clock, woken at once
//! by a stop request or by a manual clock that moved.
//!
//! Invariants kept here:
//! - `stop` is read and written only under the mutex, and the thread checks it under the
//!   mutex before every wait, so a stop request is never lost (a flag outside the mutex can
//!   be set between the thread's check and its wait).
//! - The thread never holds the mutex while it sweeps: `stop_cleanup` waits at most one pass.
//! - The join handle lives in its own mutex, held while joining, so every `stop_cleanup`
//!   call (concurrent ones too) returns only once the thread has exited.

use crate::clock::{ClockWaker, Wake};
use crate::store::Inner;
use crate::sync::{self, seeded_bug, thread, Arc, Condvar, Mutex};
use std::time::Duration;

/// State shared by the thread and its controller.
pub(crate) struct Shared {
    stop: Mutex<bool>,
    cv: Condvar,
}

impl Wake for Shared {
    fn wake(&self) {
        let _held = sync::lock(&self.stop);
        self.cv.notify_all();
    }
}

/// The handle the store keeps: stops and joins the thread.
pub(crate) struct Cleaner {
    shared: std::sync::Arc<Shared>,
    handle: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Cleaner {
    /// Starts the thread. `interval` must be non-zero.
    pub(crate) fn start(inner: Arc<Inner>, interval: Duration) -> std::io::Result<Cleaner> {
        let shared = std::sync::Arc::new(Shared {
            stop: Mutex::new(false),
            cv: Condvar::new(),
        });
        let weak: std::sync::Weak<dyn Wake> = {
            let s: std::sync::Arc<dyn Wake> = shared.clone();
            std::sync::Arc::downgrade(&s)
        };
        inner.clock.subscribe(ClockWaker(weak));
        let thread_shared = shared.clone();
        // The first tick is one interval after the store was built, not after the thread
        // happened to start.
        let step = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        let first = inner.clock.now_nanos().saturating_add(step);
        let handle = spawn(move || run(&inner, &thread_shared, first, step))?;
        Ok(Cleaner {
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// A weak handle to the state the thread holds: dead once the thread has exited and the
    /// store dropped. For the drop-joins-the-thread test.
    pub(crate) fn probe(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let s: std::sync::Arc<dyn std::any::Any + Send + Sync> = self.shared.clone();
        std::sync::Arc::downgrade(&s)
    }

    /// Stops the thread and waits for it to exit. Idempotent.
    pub(crate) fn stop(&self) {
        let mut handle = sync::lock(&self.handle);
        {
            let mut stop = sync::lock(&self.shared.stop);
            *stop = true;
            self.shared.cv.notify_all();
        }
        if let Some(h) = handle.take() {
            // A panicking sweep would be a bug; the thread is gone either way.
            let _ = h.join();
        }
    }
}

#[cfg(not(memstore_loom))]
fn spawn(f: impl FnOnce() + Send + 'static) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("memstore-cleanup".into())
        .spawn(f)
}

#[cfg(memstore_loom)]
fn spawn(f: impl FnOnce() + Send + 'static) -> std::io::Result<thread::JoinHandle<()>> {
    Ok(thread::spawn(f))
}

fn run(inner: &Inner, shared: &Shared, mut next: u64, step: u64) {
    let mut stop = sync::lock(&shared.stop);
    loop {
        if *stop {
            return;
        }
        let now = inner.clock.now_nanos();
        if now >= next {
            drop(stop);
            inner.sweep(now);
            next = now.saturating_add(step);
            stop = sync::lock(&shared.stop);
            continue;
        }
        if seeded_bug!(StopCheckUnlocked) {
            // BUG (loom only): the stop check above is no longer under the lock we wait with.
            drop(stop);
            stop = sync::lock(&shared.stop);
        }
        stop = wait(&shared.cv, stop, Duration::from_nanos(next - now));
    }
}

#[cfg(not(memstore_loom))]
fn wait<'a>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, bool>,
    d: Duration,
) -> sync::MutexGuard<'a, bool> {
    match cv.wait_timeout(g, d) {
        Ok((g, _)) => g,
        Err(p) => p.into_inner().0,
    }
}

#[cfg(memstore_loom)]
fn wait<'a>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, bool>,
    _d: Duration,
) -> sync::MutexGuard<'a, bool> {
    // loom 0.7.3's wait_timeout never times out; the models drive time with a manual clock,
    // whose moves notify.
    cv.wait(g).unwrap()
}
