//! The periodic snapshot thread of [`Builder::snapshot_every`](crate::Builder::snapshot_every):
//! one atomic [`MemStore::save`](crate::MemStore::save) every interval of the store's clock.
//!
//! It waits the way the cleanup thread does (`cleanup.rs`): the stop flag is read and written
//! only under the mutex the thread waits with, so a stop is never lost, and a clock whose
//! time moves by hand (a [`ManualClock`](crate::ManualClock)) wakes it through its
//! [`ClockWaker`], so tests drive snapshots by moving time, never by sleeping.

use super::{save_path, SaveReport};
use crate::clock::{ClockWaker, Wake};
use crate::raw::Store;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How the periodic snapshots of [`Builder::snapshot_every`](crate::Builder::snapshot_every)
/// went, from [`MemStore::snapshot_status`](crate::MemStore::snapshot_status).
///
/// ```
/// use memstore::{Clock, ManualClock, MemStore};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let path = std::env::temp_dir().join(format!("memstore-status-{}.snap", std::process::id()));
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
/// let store = MemStore::builder()
///     .clock(clock.clone())
///     .snapshot_every(Duration::from_secs(60), &path)
///     .build();
/// store.commit("t", "x", clock.now() + Duration::from_secs(3600))?;
/// clock.advance(Duration::from_secs(60)); // wakes the snapshot thread
/// let status = store.wait_for_snapshots(1, Duration::from_secs(10)).unwrap();
/// assert_eq!((status.taken, status.failed), (1, 0));
/// assert_eq!(status.last.unwrap().records, 1);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotStatus {
    /// The file each snapshot replaces.
    pub path: PathBuf,
    /// The interval between snapshots.
    pub interval: Duration,
    /// Snapshots saved.
    pub taken: u64,
    /// Snapshots that failed (each leaves the previous file in place; the next interval
    /// tries again).
    pub failed: u64,
    /// The last snapshot saved.
    pub last: Option<SaveReport>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// What the thread and the store share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the thread: a stop, or a clock that moved.
    wake: Condvar,
    /// Wakes callers of `wait_for_snapshots`: an attempt ended.
    attempted: Condvar,
}

struct State {
    stop: bool,
    status: SnapshotStatus,
}

impl Wake for Shared {
    fn wake(&self) {
        let _held = lock(&self.state);
        self.wake.notify_all();
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The store's handle on the thread: dropping it stops and joins the thread.
pub(crate) struct Periodic {
    shared: std::sync::Arc<Shared>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Periodic {
    /// Starts the thread if `config` asks for one.
    pub(crate) fn start(
        inner: &crate::sync::Arc<Store>,
        config: Option<(Duration, PathBuf)>,
    ) -> std::io::Result<Option<Periodic>> {
        let Some((interval, path)) = config else {
            return Ok(None);
        };
        let shared = std::sync::Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                status: SnapshotStatus {
                    path: path.clone(),
                    interval,
                    taken: 0,
                    failed: 0,
                    last: None,
                    last_error: None,
                },
            }),
            wake: Condvar::new(),
            attempted: Condvar::new(),
        });
        let weak: std::sync::Weak<dyn Wake> = {
            let s: std::sync::Arc<dyn Wake> = shared.clone();
            std::sync::Arc::downgrade(&s)
        };
        inner.clock.subscribe(ClockWaker(weak));
        let step = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        let first = inner.clock.now_nanos().saturating_add(step);
        let (inner, thread_shared) = (inner.clone(), shared.clone());
        let handle = std::thread::Builder::new()
            .name("memstore-snapshot".into())
            .spawn(move || run(&inner, &thread_shared, &path, first, step))?;
        Ok(Some(Periodic {
            shared,
            handle: Some(handle),
        }))
    }

    pub(crate) fn status(&self) -> SnapshotStatus {
        lock(&self.shared.state).status.clone()
    }

    pub(crate) fn wait(&self, attempts: u64, timeout: Duration) -> Option<SnapshotStatus> {
        let st = lock(&self.shared.state);
        let (st, _) = self
            .shared
            .attempted
            .wait_timeout_while(st, timeout, |s| s.status.taken + s.status.failed < attempts)
            .unwrap_or_else(|p| p.into_inner());
        let s = &st.status;
        (s.taken + s.failed >= attempts).then(|| s.clone())
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.state);
            st.stop = true;
            self.shared.wake.notify_all();
        }
        if let Some(h) = self.handle.take() {
            // A panicking save would be a bug; the thread is gone either way.
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic").finish_non_exhaustive()
    }
}

fn run(inner: &Store, shared: &Shared, path: &Path, mut next: u64, step: u64) {
    let mut st = lock(&shared.state);
    loop {
        if st.stop {
            return;
        }
        let now = inner.clock.now_nanos();
        if now >= next {
            drop(st);
            let result = save_path(inner, path);
            st = lock(&shared.state);
            match result {
                Ok(report) => {
                    st.status.taken += 1;
                    st.status.last = Some(report);
                    st.status.last_error = None;
                }
                Err(e) => {
                    st.status.failed += 1;
                    st.status.last_error = Some(e.to_string());
                }
            }
            shared.attempted.notify_all();
            // From the end of this save: a clock that jumped far ahead gets one snapshot, not
            // one per interval it skipped.
            next = inner.clock.now_nanos().saturating_add(step);
            continue;
        }
        st = match shared
            .wake
            .wait_timeout(st, Duration::from_nanos(next - now))
        {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}
