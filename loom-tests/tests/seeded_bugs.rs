//! Each seeded protocol bug (`memsession::loom_bugs`, loom builds only) must make its model
//! fail: a model that cannot fail proves nothing. Each bug's doc (`src/seeded_bugs.rs`) names
//! the invariant it breaks (`DESIGN.md`).
#![cfg(memstore_loom)]

use memsession::loom_bugs::Bug;
use memsession_loom_tests::{self as m, Bound};

#[test]
fn file_before_lower() {
    m::check_bug(
        Bug::FileBeforeLower,
        "shortening_commit_due",
        Bound::Exhaustive,
        m::shortening_commit_due,
    );
}

#[test]
fn unfiled_never_filed() {
    m::check_bug(
        Bug::UnfiledNeverFiled,
        "load_delete_shorten",
        Bound::Preemptions(3),
        m::load_delete_shorten,
    );
}

#[test]
fn lower_without_filing() {
    m::check_bug(
        Bug::LowerWithoutFiling,
        "commit_commit_existing",
        Bound::Exhaustive,
        m::commit_commit_existing,
    );
}

#[test]
fn tombstone_unexamined() {
    m::check_bug(
        Bug::TombstoneUnexamined,
        "commit_cleanup",
        Bound::Exhaustive,
        m::commit_cleanup,
    );
}

#[test]
fn no_handshake_recheck() {
    m::check_bug(
        Bug::NoHandshakeRecheck,
        "shortening_commit_reschedule",
        Bound::Exhaustive,
        m::shortening_commit_reschedule,
    );
}

#[test]
fn handshake_plain_loads() {
    m::check_bug(
        Bug::HandshakePlainLoads,
        "shortening_commit_reschedule",
        Bound::Exhaustive,
        m::shortening_commit_reschedule,
    );
}

#[test]
fn overwrite_remove_insert() {
    m::check_bug(
        Bug::OverwriteRemoveInsert,
        "commit_find",
        Bound::Preemptions(4),
        m::commit_find,
    );
}

#[test]
fn stop_check_unlocked() {
    m::check_bug(
        Bug::StopCheckUnlocked,
        "stop_drop_tick",
        Bound::Preemptions(4),
        m::stop_drop_tick,
    );
}

#[test]
fn clock_read_locked() {
    m::check_bug(
        Bug::ClockReadLocked,
        "clock_wakes_under_its_lock",
        Bound::Preemptions(4),
        m::clock_wakes_under_its_lock,
    );
}

#[test]
fn wake_unchecked() {
    m::check_bug(
        Bug::WakeUnchecked,
        "tick_after_read",
        Bound::Preemptions(4),
        m::tick_after_read,
    );
}

#[test]
fn replace_leaks() {
    m::check_bug(
        Bug::ReplaceLeaks,
        "reclamation",
        Bound::Exhaustive,
        m::reclamation,
    );
}

/// Eviction takes cleanup's path from the front: tombstoning without the CAS on the version
/// examined evicts a commit that landed first.
#[test]
fn eviction_tombstone_unexamined() {
    m::check_bug(
        Bug::TombstoneUnexamined,
        "eviction_commit",
        Bound::Preemptions(4),
        m::eviction_commit,
    );
}

/// commit_new's take-over of an expired session racing cleanup: tombstoning without the CAS
/// on the examined (expired) version removes the session just taken over.
#[test]
fn take_over_tombstone_unexamined() {
    m::check_bug(
        Bug::TombstoneUnexamined,
        "commit_new_expired",
        Bound::Preemptions(4),
        m::commit_new_expired,
    );
}

#[test]
fn stale_no_refile() {
    m::check_bug(
        Bug::StaleNoRefile,
        "shortening_drop_stale",
        Bound::Preemptions(3),
        m::shortening_drop_stale,
    );
}

/// The tombstone's owner leaves the node's hint: a hint (and its count) outlives the
/// session.
#[test]
fn hint_not_cleared() {
    m::check_bug(
        Bug::HintNotCleared,
        "hint_commit_delete_existing",
        Bound::Preemptions(2),
        m::hint_commit_delete_existing,
    );
}

/// A hint published for a node a delete has already tombstoned and unlinked (the fresh
/// node's inserter publishes after the delete's clear looked).
#[test]
fn hint_no_recheck() {
    m::check_bug(
        Bug::HintNoRecheck,
        "hint_commit_delete_fresh",
        Bound::Preemptions(3),
        m::hint_commit_delete_fresh,
    );
}

/// The same across a resize: the grower copies a hint after the delete cleared the table.
#[test]
fn hint_no_recheck_grow() {
    m::check_bug(
        Bug::HintNoRecheck,
        "hint_grow_delete",
        Bound::Preemptions(2),
        m::hint_grow_delete,
    );
}

/// A hint followed on its tag alone reads another token's session.
#[test]
fn hint_unchecked() {
    m::check_bug(
        Bug::HintUnchecked,
        "hint_shared_bucket",
        Bound::Preemptions(3),
        m::hint_shared_bucket,
    );
}

/// A publish that evicts a hint and never releases its count leaks the node (loom's leak
/// check sees the versions it holds).
#[test]
fn hint_count_lost() {
    m::check_bug(
        Bug::HintCountLost,
        "hint_shared_bucket",
        Bound::Preemptions(3),
        m::hint_shared_bucket,
    );
}

/// The tombstone's owner clears the home bucket only: the hint a full home overflowed to
/// its buddy outlives the session.
#[test]
fn hint_buddy_not_cleared() {
    m::check_bug(
        Bug::HintBuddyNotCleared,
        "hint_buddy_delete",
        Bound::Preemptions(3),
        m::hint_buddy_delete,
    );
}

/// Cleanup unlinks by token the place it located an expired node at: a commit that helped
/// unlink the tombstoned node and linked its own meanwhile loses its session.
#[test]
fn unlink_by_token() {
    m::check_bug(
        Bug::UnlinkByToken,
        "commit_cleanup",
        Bound::Exhaustive,
        m::commit_cleanup,
    );
}
