//! The background cleanup thread: one sweep every interval of the store's monotonic clock
//! ([`Clock::monotonic`](crate::Clock::monotonic)), woken at once by a stop request or by a
//! manual clock that moved.
//!
//! Invariants kept here (checked by `loom-tests`' models `stop_drop_tick`,
//! `clock_wakes_under_its_lock` and `tick_after_read`, each with a seeded bug that breaks it):
//! - `stop` and `wakes` are read and written only under the mutex, and the thread checks
//!   `stop` under the mutex before every wait, so a stop request is never lost (a flag
//!   outside the mutex can be set between the thread's check and its wait).
//! - The thread never calls the clock while holding the mutex: a clock may call its
//!   [`ClockWaker`] (which takes the mutex) while holding a lock of its own that its readings
//!   also take, and a reading under the mutex would then deadlock (and `Drop` hang).
//! - No clock move is lost although the clock is read outside the mutex: every wake bumps
//!   `wakes` under the mutex, and the thread waits only if `wakes` is what it was at its
//!   previous hold of the mutex, which came before its clock reading; otherwise it reads
//!   the clock again.
//! - The thread never holds the mutex while it sweeps: `stop_cleanup` waits at most one pass.
//! - The join handle lives in its own mutex, held while joining, so every `stop_cleanup`
//!   call (concurrent ones too) returns only once the thread has exited.
//! - Passes are paced by the monotonic reading, never the wall clock: a backward step of the
//!   wall clock does not stop cleanup for as long as the step. Each pass still reclaims by
//!   the wall clock, as every read does.
//! - A panicking pass (a bug, or a custom clock that panics) does not end cleanup: it is
//!   caught, counted in [`Stats::cleanup_panics`](crate::Stats::cleanup_panics), and the
//!   next pass runs on time. A pass leaves the store valid at every step (each step of the
//!   protocol is a single atomic update; see `raw/shard.rs`), so the next pass resumes where it
//!   stopped. Under loom the panic propagates, so that loom reports it.

use crate::clock::{ClockWaker, Wake};
use crate::raw::Store;
use crate::seeded_bugs::seeded_bug;
use crate::sync::{self, thread, Arc, Condvar, Mutex};
use std::time::Duration;

/// What the thread and its controller share under the mutex.
struct State {
    /// Set once by `stop`; the thread exits at its next check.
    stop: bool,
    /// Bumped by every wake of the clock: tells the thread that the clock moved after it read
    /// it (see the module docs).
    wakes: u64,
}

/// State shared by the thread and its controller.
pub(crate) struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Wake for Shared {
    fn wake(&self) {
        let mut state = sync::lock(&self.state);
        state.wakes = state.wakes.wrapping_add(1);
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
    pub(crate) fn start(inner: Arc<Store>, interval: Duration) -> std::io::Result<Cleaner> {
        let shared = std::sync::Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                wakes: 0,
            }),
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
        let first = inner.clock.monotonic_nanos().saturating_add(step);
        let handle = spawn(move || run(&inner, &thread_shared, first, step))?;
        Ok(Cleaner {
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// A weak handle to the state the thread holds: dead once the thread has exited and the
    /// store dropped. For the drop-joins-the-thread test.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn probe(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let s: std::sync::Arc<dyn std::any::Any + Send + Sync> = self.shared.clone();
        std::sync::Arc::downgrade(&s)
    }

    /// Stops the thread and waits for it to exit. Idempotent.
    pub(crate) fn stop(&self) {
        let mut handle = sync::lock(&self.handle);
        {
            let mut state = sync::lock(&self.shared.state);
            state.stop = true;
            self.shared.cv.notify_all();
        }
        if let Some(h) = handle.take() {
            // The thread catches a pass's panic (see `run`); it is gone either way.
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

fn run(inner: &Store, shared: &Shared, mut next: u64, step: u64) {
    // `wakes` at the thread's latest hold of the mutex: every clock reading comes after it.
    let mut seen = sync::lock(&shared.state).wakes;
    loop {
        // Read outside the mutex (see the module docs).
        let mono = if seeded_bug!(ClockReadLocked) {
            // BUG (loom only): the clock is read under the mutex that its waker takes.
            let _held = sync::lock(&shared.state);
            inner.clock.monotonic_nanos()
        } else {
            inner.clock.monotonic_nanos()
        };
        let due = mono >= next;
        if due {
            pass(inner);
            next = mono.saturating_add(step);
        }
        let mut state = sync::lock(&shared.state);
        if state.stop {
            return;
        }
        // (The seeded bug ignores a wake that came after the clock was read.)
        if due || (state.wakes != seen && !seeded_bug!(WakeUnchecked)) {
            // A pass took time, or the clock moved since it was read: read it again.
            seen = state.wakes;
            continue;
        }
        if seeded_bug!(StopCheckUnlocked) {
            // BUG (loom only): the stop check above is no longer under the lock we wait with.
            drop(state);
            state = sync::lock(&shared.state);
        }
        state = wait(&shared.cv, state, Duration::from_nanos(next - mono));
        if state.stop {
            return;
        }
        seen = state.wakes;
    }
}

/// One pass at the wall clock's now. A panic is caught and counted: cleanup goes on.
fn pass(inner: &Store) {
    let swept = sync::catch_unwind(|| {
        let now = inner.clock.now_nanos();
        inner.sweep(now);
    });
    if swept.is_err() {
        inner.note_cleanup_panic();
    }
}

#[cfg(not(memstore_loom))]
fn wait<'a>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, State>,
    d: Duration,
) -> sync::MutexGuard<'a, State> {
    match cv.wait_timeout(g, d) {
        Ok((g, _)) => g,
        Err(p) => p.into_inner().0,
    }
}

#[cfg(memstore_loom)]
fn wait<'a>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, State>,
    _d: Duration,
) -> sync::MutexGuard<'a, State> {
    // loom 0.7.3's wait_timeout never times out; the models drive time with a manual clock,
    // whose moves notify.
    cv.wait(g).unwrap()
}
