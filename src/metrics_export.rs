//! Feature `metrics`: the store's figures through the [`metrics`](https://docs.rs/metrics)
//! facade, named the Prometheus way and labelled `store` ([`Builder::name`](crate::Builder::name))
//! so that two stores in one process are told apart.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `memstore_sessions` | gauge | sessions held ([`Stats::sessions`](crate::Stats::sessions)) |
//! | `memstore_bytes` | gauge | bytes held ([`Stats::bytes`](crate::Stats::bytes)) |
//! | `memstore_expiry_entries` | gauge | expiry index entries |
//! | `memstore_hits_total`, `memstore_misses_total`, `memstore_expired_on_read_total` | counter | reads |
//! | `memstore_cleanup_passes_total`, `memstore_reclaimed_total`, `memstore_rescheduled_total`, `memstore_stale_dropped_total`, `memstore_evicted_total`, `memstore_cleanup_panics_total` | counter | cleanup and eviction |
//! | `memstore_snapshots_taken_total`, `memstore_snapshots_failed_total`, `memstore_snapshot_panics_total` | counter | periodic snapshots |
//! | `memstore_cleanup_pass_duration_seconds`, `memstore_snapshot_duration_seconds` | histogram | each background pass and save |
//! | `memstore_nearcache_*` (feature `redis`) | counter, gauge | [`NearCacheStats`](crate::redis::NearCacheStats): `local_hits_total`, `redis_reads_total`, `invalidations_total`, `conflicts_total`, `flushes_total`, `connection_losses_total`, `reconnects_total`, `connected` |
//!
//! The histograms are recorded as each pass and save ends, the snapshot counters after each
//! snapshot. The other gauges and counters are set from
//! [`MemStore::stats`](crate::MemStore::stats) after each background cleanup pass, and whenever [`MemStore::record_metrics`](crate::MemStore::record_metrics) is
//! called (call it before a scrape for figures of that instant). Counters are set to the
//! store's own totals (`absolute`), so a recorder sees them exactly.

use crate::raw::Store;
use crate::snapshot::SnapshotStatus;
use crate::Stats;
use std::time::Duration;

fn f(n: usize) -> f64 {
    // Figures far below 2^53: exact.
    n as f64
}

/// Sets `store`'s gauges and counters from its stats (and its snapshot status, if any).
pub(crate) fn record_store(store: &str, inner: &Store, snapshots: Option<&SnapshotStatus>) {
    let s = Stats::of(inner);
    let l = || [("store", store.to_owned())];
    ::metrics::gauge!("memstore_sessions", &l()).set(f(s.sessions));
    ::metrics::gauge!("memstore_bytes", &l()).set(f(s.bytes));
    ::metrics::gauge!("memstore_expiry_entries", &l()).set(f(s.expiry_entries));
    ::metrics::counter!("memstore_hits_total", &l()).absolute(s.hits);
    ::metrics::counter!("memstore_misses_total", &l()).absolute(s.misses);
    ::metrics::counter!("memstore_expired_on_read_total", &l()).absolute(s.expired_on_read);
    ::metrics::counter!("memstore_cleanup_passes_total", &l()).absolute(s.cleanup_passes);
    ::metrics::counter!("memstore_reclaimed_total", &l()).absolute(s.reclaimed);
    ::metrics::counter!("memstore_rescheduled_total", &l()).absolute(s.rescheduled);
    ::metrics::counter!("memstore_stale_dropped_total", &l()).absolute(s.stale_dropped);
    ::metrics::counter!("memstore_evicted_total", &l()).absolute(s.evicted);
    ::metrics::counter!("memstore_cleanup_panics_total", &l()).absolute(s.cleanup_panics);
    if let Some(st) = snapshots {
        record_snapshots(store, st);
    }
}

/// Sets `store`'s snapshot counters.
pub(crate) fn record_snapshots(store: &str, st: &SnapshotStatus) {
    let l = || [("store", store.to_owned())];
    ::metrics::counter!("memstore_snapshots_taken_total", &l()).absolute(st.taken);
    ::metrics::counter!("memstore_snapshots_failed_total", &l()).absolute(st.failed);
    ::metrics::counter!("memstore_snapshot_panics_total", &l()).absolute(st.panics);
}

/// A background cleanup pass took `took`.
pub(crate) fn cleanup_pass(store: &str, took: Duration) {
    ::metrics::histogram!("memstore_cleanup_pass_duration_seconds", "store" => store.to_owned())
        .record(took.as_secs_f64());
}

/// A snapshot attempt took `took`.
pub(crate) fn snapshot(store: &str, took: Duration) {
    ::metrics::histogram!("memstore_snapshot_duration_seconds", "store" => store.to_owned())
        .record(took.as_secs_f64());
}

/// Sets a near-cache's figures, labelled with its local store's name.
#[cfg(feature = "redis")]
pub(crate) fn record_near_cache(store: &str, s: &crate::redis::NearCacheStats) {
    let l = || [("store", store.to_owned())];
    ::metrics::counter!("memstore_nearcache_local_hits_total", &l()).absolute(s.local_hits);
    ::metrics::counter!("memstore_nearcache_redis_reads_total", &l()).absolute(s.redis_reads);
    ::metrics::counter!("memstore_nearcache_invalidations_total", &l()).absolute(s.invalidations);
    ::metrics::counter!("memstore_nearcache_conflicts_total", &l()).absolute(s.conflicts);
    ::metrics::counter!("memstore_nearcache_flushes_total", &l()).absolute(s.flushes);
    ::metrics::counter!("memstore_nearcache_connection_losses_total", &l())
        .absolute(s.connection_losses);
    ::metrics::counter!("memstore_nearcache_reconnects_total", &l()).absolute(s.reconnects);
    ::metrics::gauge!("memstore_nearcache_connected", &l()).set(if s.connected {
        1.0
    } else {
        0.0
    });
}
