//! [`SnapshotStatus`]: how the periodic snapshots of
//! [`Builder::snapshot_every`](crate::Builder::snapshot_every) went. The store's ticker
//! (`ticker.rs`) schedules them and keeps this status.

use super::SaveReport;
use std::path::PathBuf;
use std::time::Duration;

/// How the periodic snapshots of [`Builder::snapshot_every`](crate::Builder::snapshot_every)
/// went, from [`MemStore::snapshot_status`](crate::MemStore::snapshot_status).
///
/// ```
/// use memsession::{Clock, ManualClock, MemStore};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let path = std::env::temp_dir().join(format!("memstore-status-{}.snap", std::process::id()));
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
/// let store = MemStore::builder()
///     .clock(clock.clone())
///     .snapshot_every(Duration::from_secs(60), &path)
///     .build();
/// store.commit("t", "x", clock.now() + Duration::from_secs(3600))?;
/// clock.advance(Duration::from_secs(60)); // wakes the store's ticker
/// let status = store.wait_for_snapshots(1, Duration::from_secs(10)).unwrap();
/// assert_eq!((status.taken, status.failed, status.panics), (1, 0, 0));
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
    /// tries again), panicked ones included.
    pub failed: u64,
    /// Snapshots that panicked (a bug, or a custom [`Clock`](crate::Clock) that panics):
    /// caught, counted here and in `failed`, their message in `last_error`; the next interval
    /// tries again.
    pub panics: u64,
    /// The last snapshot saved.
    pub last: Option<SaveReport>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}
