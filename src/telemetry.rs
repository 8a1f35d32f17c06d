//! What the store reports about its background work and restores, as `tracing` events, in
//! one place: each function is one event. None is on the per-request path (find, commit,
//! delete): each is called by the ticker (a pass, a snapshot) or by a load. (A save's failed
//! directory fsync is logged by `snapshot/save.rs` itself.) Every event names its store (`store`, [`Builder::name`](crate::Builder::name)).
//!
//! Levels: `error` for a caught panic and a failed periodic snapshot, `warn` for a degraded
//! but working state (a directory fsync that failed after the rename, a restore that skipped
//! damaged blocks or refused sessions), `info` for a restore's report, `debug` for each
//! cleanup pass and snapshot (counts and duration) and for the background thread's stop.
//! The near-cache's events are in `redis/conn.rs`.

use crate::raw::{Store, Swept};
use crate::snapshot::{LoadReport, SaveReport, SnapshotError};
use std::path::Path;
use std::time::Duration;

/// A background cleanup pass ended (and, feature `metrics`, its duration and the store's
/// figures are recorded).
pub(crate) fn cleanup_pass(store: &str, inner: &Store, swept: &Swept, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        crate::metrics_export::cleanup_pass(store, took);
        crate::metrics_export::record_store(store, inner, None);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = inner;
    tracing::debug!(
        store,
        reclaimed = swept.reclaimed,
        rescheduled = swept.rescheduled,
        stale_dropped = swept.stale, // the public name: `Stats::stale_dropped`
        took_us = micros(took),
        "cleanup pass"
    );
}

/// A cleanup pass panicked (caught and counted in `Stats::cleanup_panics`).
pub(crate) fn cleanup_panic(store: &str, panic: &str) {
    tracing::error!(
        store,
        panic,
        "cleanup pass panicked; caught and counted, the next pass runs on time"
    );
}

/// A periodic snapshot was saved.
pub(crate) fn snapshot_saved(store: &str, path: &Path, report: &SaveReport, took: Duration) {
    tracing::debug!(
        store,
        path = %path.display(),
        records = report.records,
        bytes = report.bytes,
        took_us = micros(took),
        "snapshot saved"
    );
}

/// A periodic snapshot failed.
pub(crate) fn snapshot_failed(store: &str, path: &Path, error: &str, took: Duration) {
    tracing::error!(
        store,
        path = %path.display(),
        error,
        took_us = micros(took),
        "snapshot failed; the previous file stays, the next interval tries again"
    );
}

/// A periodic snapshot panicked (caught and counted in `SnapshotStatus::panics`).
pub(crate) fn snapshot_panic(store: &str, path: &Path, panic: &str) {
    tracing::error!(
        store,
        path = %path.display(),
        panic,
        "snapshot panicked; caught and counted, the next interval tries again"
    );
}

/// The background thread saw its stop; it joins the save thread, if any, and exits.
pub(crate) fn stopped(store: &str, joining_save: bool) {
    tracing::debug!(store, joining_save, "background work stopped");
}

/// A load ended: its report (info), refused sessions or damaged blocks (warn).
pub(crate) fn restored(store: &str, result: &Result<LoadReport, SnapshotError>) {
    match result {
        Ok(r) => {
            tracing::info!(
                store,
                loaded = r.loaded,
                expired = r.expired,
                present = r.present,
                refused = r.refused,
                "snapshot restored"
            );
            if r.refused > 0 {
                tracing::warn!(
                    store,
                    refused = r.refused,
                    "restore refused sessions: the store was at one of its bounds"
                );
            }
        }
        Err(e) if e.is_not_found() => {
            tracing::info!(store, "no snapshot to restore (not found)");
        }
        Err(e) => {
            let r = e.report();
            tracing::warn!(
                store,
                error = %e,
                offset = e.offset(),
                loaded = r.loaded,
                refused = r.refused,
                lost_bytes = r.lost_bytes,
                "restore stopped at a damaged or unreadable block; the blocks before it are loaded"
            );
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
