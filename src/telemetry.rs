//! What the store reports about its background work, in one place: each function is one
//! event (a cleanup pass, a caught panic, a snapshot's outcome). None is on the per-request
//! path (find, commit, delete).

use crate::raw::{Store, Swept};
use crate::snapshot::SaveReport;
use std::path::Path;
use std::time::Duration;

/// A cleanup pass ended.
pub(crate) fn cleanup_pass(_inner: &Store, _swept: &Swept, _took: Duration) {}

/// A cleanup pass panicked (caught and counted).
pub(crate) fn cleanup_panic(_inner: &Store, _msg: &str) {}

/// A periodic snapshot was saved.
pub(crate) fn snapshot_saved(_inner: &Store, _path: &Path, _report: &SaveReport, _took: Duration) {}

/// A periodic snapshot failed.
pub(crate) fn snapshot_failed(_inner: &Store, _path: &Path, _error: &str, _took: Duration) {}

/// A periodic snapshot panicked (caught and counted).
pub(crate) fn snapshot_panic(_inner: &Store, _path: &Path, _msg: &str) {}

/// A save's directory fsync failed after the rename (the save is reported as saved).
pub(crate) fn dir_sync_failed(_path: &Path, _error: &std::io::Error) {}
