//! The store's ticker with both jobs scheduled (cleanup passes and periodic snapshots), and
//! the seeded bug its model must catch. The cleanup-only ticker models (`stop_drop_tick`,
//! `clock_wakes_under_its_lock`, `tick_after_read`) stay in `models.rs` and `seeded_bugs.rs`.
#![cfg(memstore_loom)]

use memsession::loom_bugs::Bug;
use memsession_loom_tests::{self as m, Bound};

#[test]
fn slow_snapshot_cleanup() {
    m::check(
        "slow_snapshot_cleanup",
        Bound::Preemptions(3),
        m::slow_snapshot_cleanup,
    );
}

/// A save run on the ticker's own thread holds up the cleanup pass due beside it.
#[test]
fn snapshot_inline() {
    m::check_bug(
        Bug::SnapshotInline,
        "slow_snapshot_cleanup",
        Bound::Preemptions(3),
        m::slow_snapshot_cleanup,
    );
}
