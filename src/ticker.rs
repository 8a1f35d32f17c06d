//! The ticker: the one component that schedules the store's background work, cleanup passes
//! ([`Builder::cleanup_interval`](crate::Builder::cleanup_interval)) and periodic snapshots
//! ([`Builder::snapshot_every`](crate::Builder::snapshot_every)), each job every interval of
//! the store's monotonic clock ([`Clock::monotonic`](crate::Clock::monotonic)), woken at once
//! by a stop request, by a manual clock that moved, or by a save that ended.
//!
//! **One thread, and a save beside it.** The ticker's thread (`memstore-ticker`) reads the
//! clock, runs each due cleanup pass itself and waits. A due snapshot it hands to a thread
//! of its own (`memstore-snapshot`), spawned for that save and joined before the next one
//! starts or the ticker exits. A save takes as long as the store is large (a core for about
//! a second per million sessions), and a cleanup pass must never wait for it: run inline, a
//! slow save would delay every pass due meanwhile. A save is never cut into slices on the
//! ticker's thread instead, because a save is one consistent walk over every shard (the
//! encoder's state, the per-shard duplicate filter); a thread per save (one every snapshot
//! interval, minutes in practice) costs a spawn per interval and keeps the walk whole. At
//! most one save runs at a time: a snapshot that comes due while the last one still runs
//! starts as soon as that one ends (one save, not one per interval missed).
//!
//! Invariants kept here (checked by `loom-tests`' models `stop_drop_tick`,
//! `clock_wakes_under_its_lock`, `tick_after_read` and `slow_snapshot_cleanup`, each with a
//! seeded bug that breaks it):
//! - `stop`, `wakes`, `saving` and the snapshot status are read and written only under the
//!   mutex, and the ticker checks `stop` under the mutex before every wait, so a stop request
//!   is never lost (a flag outside the mutex can be set between the check and the wait).
//! - The ticker never calls the clock while holding the mutex: a clock may call its
//!   [`ClockWaker`] (which takes the mutex) while holding a lock of its own that its readings
//!   also take, and a reading under the mutex would then deadlock (and `Drop` hang). The
//!   save thread reads the clock (the snapshot's creation time) without holding it either.
//! - No wake is lost although the clock is read outside the mutex: every wake (a clock move,
//!   a save's end) bumps `wakes` under the mutex, and the ticker waits only if `wakes` is what
//!   it was at its previous hold of the mutex, which came before its clock reading; otherwise
//!   it reads the clock again.
//! - The ticker never holds the mutex while it runs a job: a cleanup pass runs outside it, a
//!   save on its own thread. A save in flight never delays a cleanup pass: the ticker does
//!   not wait for it, it only notes that it runs.
//! - The join handle lives in its own mutex, held while joining, so every stop (concurrent
//!   ones too) returns only once the ticker has exited; the ticker joins the save thread
//!   before it exits, so no thread of the store outlives it.
//! - A stop is prompt: it waits for at most one cleanup pass, or one batch of a save's walk
//!   (a shard at most) in flight, which `stop` cancels (an atomic flag the save polls before
//!   each batch; the previous file stays, the attempt is recorded as failed).
//! - With snapshots on, `stop_cleanup` ends only the cleanup job: it turns the job off under
//!   the mutex and waits, on the `idle` condition variable, for a pass in flight to end; the
//!   ticker starts a pass only under the mutex, after checking the job is still on.
//! - Jobs are paced by the monotonic reading, never the wall clock: a backward step of the
//!   wall clock does not stop cleanup or snapshots for as long as the step. Each pass still
//!   reclaims by the wall clock, as every read does, and each snapshot records it.
//! - A panicking job (a bug, or a custom clock that panics) does not end the ticker: a
//!   cleanup pass's panic is caught, counted in
//!   [`Stats::cleanup_panics`](crate::Stats::cleanup_panics) and logged, and the next pass
//!   runs on time (a pass leaves the store valid at every step: each step of the protocol is a
//!   single atomic update, see `raw/shard/`); a save's is caught on its thread, counted in
//!   [`SnapshotStatus`]'s `failed` and `panics` with the message in `last_error`, logged, and
//!   the next interval's snapshot runs. Under loom the panic propagates, so that loom
//!   reports it.

use crate::clock::{ClockWaker, Wake};
use crate::raw::Store;
use crate::seeded_bugs::seeded_bug;
use crate::snapshot::{self, SaveReport, SnapshotStatus};
use crate::sync::{self, thread, Arc, Condvar, Mutex};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A test's stand-in for the save (feature `test-hooks`): what it returns is the attempt's
/// outcome.
#[cfg(feature = "test-hooks")]
pub(crate) type TestSave = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What a snapshot job writes.
#[derive(Clone)]
pub(crate) enum SaveTo {
    /// [`MemStore::save`](crate::MemStore::save) to this path.
    Path(PathBuf),
    /// A test's stand-in for the save, reported as a save of nothing.
    #[cfg(feature = "test-hooks")]
    Test(PathBuf, TestSave),
}

impl SaveTo {
    fn path(&self) -> &std::path::Path {
        match self {
            SaveTo::Path(p) => p,
            #[cfg(feature = "test-hooks")]
            SaveTo::Test(p, _) => p,
        }
    }

    fn run(&self, inner: &Store, cancelled: &dyn Fn() -> bool) -> Result<SaveReport, String> {
        match self {
            SaveTo::Path(p) => {
                snapshot::save_path_unless(inner, p, cancelled).map_err(|e| e.to_string())
            }
            #[cfg(feature = "test-hooks")]
            SaveTo::Test(_, f) => f().map(|()| SaveReport {
                records: 0,
                bytes: 0,
                created: crate::clock::from_nanos(inner.clock.now_nanos()),
                dir_sync_error: None,
            }),
        }
    }
}

impl std::fmt::Debug for SaveTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SaveTo").field(&self.path()).finish()
    }
}

/// The background work a store asks for: each job's interval (non-zero), or `None`.
#[derive(Debug, Clone)]
pub(crate) struct Jobs {
    /// The store's name, in its events ([`Builder::name`](crate::Builder::name)).
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) cleanup: Option<Duration>,
    pub(crate) snapshot: Option<(Duration, SaveTo)>,
}

/// What the ticker, the save thread and the controller share under the mutex.
struct State {
    /// Set once by `stop`; the ticker exits at its next check.
    stop: bool,
    /// Bumped by every wake (a clock move, a save's end): tells the ticker that something
    /// changed after it read the clock (see the module docs).
    wakes: u64,
    /// The cleanup job is on (cleared by `stop_cleanup`).
    cleanup: bool,
    /// A cleanup pass is running (`stop_cleanup` waits for it to end).
    cleaning: bool,
    /// A save thread is running.
    saving: bool,
    /// How the snapshots went; `None` when the snapshot job is off.
    status: Option<SnapshotStatus>,
}

/// State shared by the ticker, the save thread and the controller.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the ticker: a stop, a clock that moved, a save that ended.
    cv: Condvar,
    /// Wakes `stop_cleanup` (a pass ended) and `wait_for_snapshots` (an attempt ended).
    idle: Condvar,
    /// Set by `stop`: a save in flight gives up before its next batch. Outside the mutex (the
    /// save polls it), and outside the protocol: a std atomic in every build.
    cancel: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn bump(&self, state: &mut State) {
        state.wakes = state.wakes.wrapping_add(1);
        self.cv.notify_all();
    }
}

impl Wake for Shared {
    fn wake(&self) {
        let mut state = sync::lock(&self.state);
        self.bump(&mut state);
    }
}

/// The store's handle on the ticker: stops and joins it.
pub(crate) struct Ticker {
    shared: std::sync::Arc<Shared>,
    handle: Mutex<Option<thread::JoinHandle<()>>>,
    /// The snapshot job is on: `stop_cleanup` then ends the cleanup job only.
    snapshots: bool,
}

/// What the ticker's thread owns.
struct Ctx {
    inner: Arc<Store>,
    name: std::sync::Arc<str>,
    shared: std::sync::Arc<Shared>,
    /// The cleanup job: its interval and next due time (monotonic nanoseconds).
    cleanup: Option<Job>,
    /// The snapshot job.
    snapshot: Option<(Job, SaveTo)>,
    /// With both jobs on, a pass starts only under the mutex (`stop_cleanup`'s handshake).
    handshake: bool,
}

#[derive(Clone, Copy)]
struct Job {
    step: u64,
    next: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Ticker {
    /// Starts the ticker if `jobs` has any job.
    pub(crate) fn start(inner: &Arc<Store>, jobs: Jobs) -> std::io::Result<Option<Ticker>> {
        if jobs.cleanup.is_none() && jobs.snapshot.is_none() {
            return Ok(None);
        }
        let status = jobs.snapshot.as_ref().map(|(interval, to)| SnapshotStatus {
            path: to.path().to_path_buf(),
            interval: *interval,
            taken: 0,
            failed: 0,
            panics: 0,
            last: None,
            last_error: None,
        });
        let shared = std::sync::Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                wakes: 0,
                cleanup: jobs.cleanup.is_some(),
                cleaning: false,
                saving: false,
                status,
            }),
            cv: Condvar::new(),
            idle: Condvar::new(),
            cancel: std::sync::atomic::AtomicBool::new(false),
        });
        let weak: std::sync::Weak<dyn Wake> = {
            let s: std::sync::Arc<dyn Wake> = shared.clone();
            std::sync::Arc::downgrade(&s)
        };
        inner.clock.subscribe(ClockWaker(weak));
        // Each job's first run is one interval after the store was built, not after the
        // thread happened to start.
        let base = inner.clock.monotonic_nanos();
        let job = |d: Duration| Job {
            step: nanos(d),
            next: base.saturating_add(nanos(d)),
        };
        let snapshots = jobs.snapshot.is_some();
        let ctx = Ctx {
            inner: inner.clone(),
            name: jobs.name.clone(),
            shared: shared.clone(),
            cleanup: jobs.cleanup.map(job),
            snapshot: jobs.snapshot.map(|(d, to)| (job(d), to)),
            handshake: jobs.cleanup.is_some() && snapshots,
        };
        let handle = spawn("memstore-ticker", move || ctx.run())?;
        Ok(Some(Ticker {
            shared,
            handle: Mutex::new(Some(handle)),
            snapshots,
        }))
    }

    /// A weak handle to the state the ticker holds: dead once the ticker has exited and the
    /// store dropped. For the drop-joins-the-thread test.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn probe(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let s: std::sync::Arc<dyn std::any::Any + Send + Sync> = self.shared.clone();
        std::sync::Arc::downgrade(&s)
    }

    /// Whether the cleanup job is on.
    pub(crate) fn cleans(&self) -> bool {
        sync::lock(&self.shared.state).cleanup
    }

    /// Ends the cleanup job and returns once no pass runs or can start. With snapshots off
    /// that stops the ticker. Idempotent.
    pub(crate) fn stop_cleanup(&self) {
        if !self.snapshots {
            return self.stop();
        }
        let mut state = sync::lock(&self.shared.state);
        state.cleanup = false;
        while state.cleaning {
            state = wait(&self.shared.idle, state, None);
        }
    }

    /// Stops the ticker (every job) and waits for it, and any save in flight, to end: at most
    /// one cleanup pass, or one batch of a save's walk (a save in flight gives up before its
    /// next batch, leaving the previous file; it is recorded as failed). Idempotent.
    pub(crate) fn stop(&self) {
        let mut handle = sync::lock(&self.handle);
        self.shared
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
        {
            let mut state = sync::lock(&self.shared.state);
            state.stop = true;
            state.cleanup = false;
            self.shared.cv.notify_all();
        }
        if let Some(h) = handle.take() {
            // The ticker catches its jobs' panics; it is gone either way.
            let _ = h.join();
        }
    }

    /// How the snapshots went; `None` when the snapshot job is off.
    pub(crate) fn snapshot_status(&self) -> Option<SnapshotStatus> {
        sync::lock(&self.shared.state).status.clone()
    }

    /// Blocks until `attempts` snapshot attempts in all have ended or `timeout` of real time
    /// has passed (under loom: until they have).
    pub(crate) fn wait_for_snapshots(
        &self,
        attempts: u64,
        timeout: Duration,
    ) -> Option<SnapshotStatus> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = sync::lock(&self.shared.state);
        loop {
            let s = state.status.as_ref()?;
            if s.taken + s.failed >= attempts {
                return Some(s.clone());
            }
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                None => Duration::MAX,
            };
            if left.is_zero() {
                return None;
            }
            state = wait(&self.shared.idle, state, Some(left));
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

#[cfg(not(memstore_loom))]
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name.into()).spawn(f)
}

#[cfg(memstore_loom)]
fn spawn(
    _name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    Ok(thread::spawn(f))
}

impl Ctx {
    fn run(mut self) {
        let mut save: Option<thread::JoinHandle<()>> = None;
        self.tick(&mut save);
        // Stopped (a save in flight is cancelled): no thread of the store outlives the ticker.
        crate::telemetry::stopped(&self.name, save.is_some());
        if let Some(h) = save.take() {
            let _ = h.join();
        }
    }

    fn tick(&mut self, save: &mut Option<thread::JoinHandle<()>>) {
        let shared_arc = self.shared.clone();
        let shared = &*shared_arc;
        // `wakes` at the ticker's latest hold of the mutex: every clock reading comes after
        // it. `saving` as it was then: a save that ended since has bumped `wakes`.
        let (mut seen, mut saving) = {
            let state = sync::lock(&shared.state);
            (state.wakes, state.saving)
        };
        loop {
            // Read outside the mutex (see the module docs).
            let mono = if seeded_bug!(ClockReadLocked) {
                // BUG (loom only): the clock is read under the mutex that its waker takes.
                let _held = sync::lock(&shared.state);
                self.inner.clock.monotonic_nanos()
            } else {
                self.inner.clock.monotonic_nanos()
            };
            let mut ran = false;
            if let Some((job, to)) = &mut self.snapshot {
                if mono >= job.next && !saving {
                    ran = true;
                    if seeded_bug!(SnapshotInline) {
                        // BUG (loom only): the save runs on the ticker's thread, so a slow
                        // save delays every cleanup pass due meanwhile.
                        save_job(&self.inner, shared, to, &self.name);
                    } else {
                        if let Some(h) = save.take() {
                            let _ = h.join(); // ended: it cleared `saving`
                        }
                        *save = start_save(&self.inner, &shared_arc, to, &self.name);
                        saving = save.is_some();
                    }
                    // From this save's start: a clock that jumped far ahead gets one
                    // snapshot, not one per interval it skipped.
                    job.next = mono.saturating_add(job.step);
                }
            }
            if let Some(job) = &mut self.cleanup {
                if mono >= job.next {
                    ran = true;
                    if self.handshake {
                        if begin_pass(shared) {
                            pass(&self.inner, &self.name);
                            end_pass(shared);
                        }
                    } else {
                        pass(&self.inner, &self.name);
                    }
                    job.next = mono.saturating_add(job.step);
                }
            }
            let mut state = sync::lock(&shared.state);
            if state.stop {
                return;
            }
            if !state.cleanup {
                self.cleanup = None;
            }
            // (The seeded bug ignores a wake that came after the clock was read.)
            if ran || (state.wakes != seen && !seeded_bug!(WakeUnchecked)) {
                // A job took time, or something changed since the clock was read: read it
                // again.
                seen = state.wakes;
                saving = state.saving;
                continue;
            }
            if seeded_bug!(StopCheckUnlocked) {
                // BUG (loom only): the stop check above is no longer under the lock we wait
                // with.
                drop(state);
                state = sync::lock(&shared.state);
            }
            // The next due time; a snapshot due while a save runs waits for its end (a wake).
            let next = [
                self.cleanup.map(|j| j.next),
                self.snapshot
                    .as_ref()
                    .filter(|_| !saving)
                    .map(|(j, _)| j.next),
            ]
            .into_iter()
            .flatten()
            .min();
            state = wait(
                &shared.cv,
                state,
                next.map(|n| Duration::from_nanos(n.saturating_sub(mono))),
            );
            if state.stop {
                return;
            }
            seen = state.wakes;
            saving = state.saving;
        }
    }
}

/// Starts a pass unless `stop_cleanup` ended the job.
fn begin_pass(shared: &Shared) -> bool {
    let mut state = sync::lock(&shared.state);
    if state.stop || !state.cleanup {
        return false;
    }
    state.cleaning = true;
    true
}

fn end_pass(shared: &Shared) {
    let mut state = sync::lock(&shared.state);
    state.cleaning = false;
    shared.idle.notify_all();
}

/// One cleanup pass at the wall clock's now. A panic is caught, counted and logged: cleanup
/// goes on.
fn pass(inner: &Store, name: &str) {
    let started = Instant::now();
    match sync::catch_unwind(|| {
        let now = inner.clock.now_nanos();
        inner.sweep(now)
    }) {
        Ok(swept) => crate::telemetry::cleanup_pass(name, inner, &swept, started.elapsed()),
        Err(msg) => {
            inner.note_cleanup_panic();
            crate::telemetry::cleanup_panic(name, &msg);
        }
    }
}

/// Spawns the save thread; `None` (the attempt counted as failed) if it cannot start.
fn start_save(
    inner: &Arc<Store>,
    shared: &std::sync::Arc<Shared>,
    to: &SaveTo,
    name: &std::sync::Arc<str>,
) -> Option<thread::JoinHandle<()>> {
    sync::lock(&shared.state).saving = true;
    let (i, s, t, n) = (inner.clone(), shared.clone(), to.clone(), name.clone());
    match spawn("memstore-snapshot", move || save_job(&i, &s, &t, &n)) {
        Ok(h) => Some(h),
        Err(e) => {
            record(
                name,
                shared,
                Err(Failure::Error(format!(
                    "cannot start the snapshot thread: {e}"
                ))),
                Duration::ZERO,
            );
            None
        }
    }
}

enum Failure {
    Error(String),
    Panic(String),
}

/// One snapshot attempt: the save, its panic caught, the outcome recorded.
fn save_job(inner: &Store, shared: &Shared, to: &SaveTo, name: &str) {
    let started = Instant::now();
    let cancelled = || shared.cancel.load(std::sync::atomic::Ordering::Relaxed);
    let result = match sync::catch_unwind(|| to.run(inner, &cancelled)) {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(msg) => Err(Failure::Panic(msg)),
    };
    record(name, shared, result, started.elapsed());
}

/// Records an attempt's outcome in the status, wakes the ticker and the waiters, then logs it
/// (outside the mutex: a subscriber may take its time).
fn record(name: &str, shared: &Shared, result: Result<SaveReport, Failure>, took: Duration) {
    let path = {
        let mut state = sync::lock(&shared.state);
        state.saving = false;
        shared.bump(&mut state);
        let Some(status) = state.status.as_mut() else {
            return;
        };
        match &result {
            Ok(report) => {
                status.taken += 1;
                status.last = Some(*report);
                status.last_error = None;
            }
            Err(Failure::Error(e)) => {
                status.failed += 1;
                status.last_error = Some(e.clone());
            }
            Err(Failure::Panic(msg)) => {
                status.failed += 1;
                status.panics += 1;
                status.last_error = Some(format!("the snapshot panicked: {msg}"));
            }
        }
        #[cfg(feature = "metrics")]
        let counts = status.clone();
        let path = status.path.clone();
        shared.idle.notify_all();
        #[cfg(feature = "metrics")]
        {
            crate::metrics_export::snapshot(name, took);
            crate::metrics_export::record_snapshots(name, &counts);
        }
        path
    };
    match &result {
        Ok(report) => crate::telemetry::snapshot_saved(name, &path, report, took),
        Err(Failure::Error(e)) => crate::telemetry::snapshot_failed(name, &path, e, took),
        Err(Failure::Panic(msg)) => crate::telemetry::snapshot_panic(name, &path, msg),
    }
}

/// Waits on `cv` for at most `d` (`None`: until notified).
#[cfg(not(memstore_loom))]
fn wait<'a, T>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, T>,
    d: Option<Duration>,
) -> sync::MutexGuard<'a, T> {
    match d {
        Some(d) => match cv.wait_timeout(g, d) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        },
        None => match cv.wait(g) {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        },
    }
}

#[cfg(memstore_loom)]
fn wait<'a, T>(
    cv: &Condvar,
    g: sync::MutexGuard<'a, T>,
    _d: Option<Duration>,
) -> sync::MutexGuard<'a, T> {
    // loom 0.7.3's wait_timeout never times out; the models drive time with a manual clock,
    // whose moves notify.
    cv.wait(g).unwrap()
}
