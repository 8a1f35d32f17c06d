//! Every model of the protocol, each explored by loom with its bound. What each checks, and
//! the invariants (I1-I5, H1-H3) they assert: `DESIGN.md`, "What loom checks"; how to run
//! them: `run.sh`.
#![cfg(memstore_loom)]

use memsession_loom_tests::{self as m, Bound};

#[test]
fn commit_commit_existing() {
    m::check(
        "commit_commit_existing",
        Bound::Exhaustive,
        m::commit_commit_existing,
    );
}

#[test]
fn commit_commit_fresh() {
    m::check(
        "commit_commit_fresh",
        Bound::Exhaustive,
        m::commit_commit_fresh,
    );
}

#[test]
fn commit_delete_existing() {
    m::check(
        "commit_delete_existing",
        Bound::Exhaustive,
        m::commit_delete_existing,
    );
}

#[test]
fn commit_delete_fresh() {
    m::check(
        "commit_delete_fresh",
        Bound::Exhaustive,
        m::commit_delete_fresh,
    );
}

#[test]
fn commit_find() {
    m::check("commit_find", Bound::Preemptions(4), m::commit_find);
}

#[test]
fn commit_cleanup() {
    m::check("commit_cleanup", Bound::Exhaustive, m::commit_cleanup);
}

#[test]
fn shortening_commit_reschedule() {
    m::check(
        "shortening_commit_reschedule",
        Bound::Exhaustive,
        m::shortening_commit_reschedule,
    );
}

#[test]
fn shortening_commit_due() {
    m::check(
        "shortening_commit_due",
        Bound::Exhaustive,
        m::shortening_commit_due,
    );
}

#[test]
fn delete_reschedule() {
    m::check("delete_reschedule", Bound::Exhaustive, m::delete_reschedule);
}

#[test]
fn delete_expired() {
    m::check("delete_expired", Bound::Exhaustive, m::delete_expired);
}

#[test]
fn stop_drop_tick() {
    m::check("stop_drop_tick", Bound::Preemptions(4), m::stop_drop_tick);
}

#[test]
fn clock_wakes_under_its_lock() {
    m::check(
        "clock_wakes_under_its_lock",
        Bound::Preemptions(4),
        m::clock_wakes_under_its_lock,
    );
}

#[test]
fn tick_after_read() {
    m::check("tick_after_read", Bound::Preemptions(4), m::tick_after_read);
}

#[test]
fn reclamation() {
    m::check("reclamation", Bound::Exhaustive, m::reclamation);
}

#[test]
fn commit_delete_cleanup() {
    m::check(
        "commit_delete_cleanup",
        Bound::Preemptions(4),
        m::commit_delete_cleanup,
    );
}

#[test]
fn eviction_commit() {
    m::check("eviction_commit", Bound::Preemptions(4), m::eviction_commit);
}

#[test]
fn commit_new_fresh() {
    m::check("commit_new_fresh", Bound::Exhaustive, m::commit_new_fresh);
}

#[test]
fn load_delete_shorten() {
    m::check(
        "load_delete_shorten",
        Bound::Preemptions(4),
        m::load_delete_shorten,
    );
}

#[test]
fn commit_new_expired() {
    m::check(
        "commit_new_expired",
        Bound::Preemptions(4),
        m::commit_new_expired,
    );
}

#[test]
fn touch_commit() {
    m::check("touch_commit", Bound::Exhaustive, m::touch_commit);
}

#[test]
fn shortening_drop_stale() {
    m::check(
        "shortening_drop_stale",
        Bound::Preemptions(3),
        m::shortening_drop_stale,
    );
}

#[test]
fn hint_shared_bucket() {
    m::check(
        "hint_shared_bucket",
        Bound::Preemptions(3),
        m::hint_shared_bucket,
    );
}

#[test]
fn hint_buddy_delete() {
    m::check(
        "hint_buddy_delete",
        Bound::Preemptions(3),
        m::hint_buddy_delete,
    );
}

#[test]
fn hint_grow_delete() {
    m::check(
        "hint_grow_delete",
        Bound::Preemptions(2),
        m::hint_grow_delete,
    );
}

#[test]
fn hint_commit_delete_existing() {
    m::check(
        "hint_commit_delete_existing",
        Bound::Preemptions(2),
        m::hint_commit_delete_existing,
    );
}

#[test]
fn hint_commit_delete_fresh() {
    m::check(
        "hint_commit_delete_fresh",
        Bound::Preemptions(3),
        m::hint_commit_delete_fresh,
    );
}

#[test]
fn hint_overwrite_find() {
    m::check(
        "hint_overwrite_find",
        Bound::Preemptions(3),
        m::hint_overwrite_find,
    );
}

#[test]
fn hint_commit_cleanup() {
    m::check(
        "hint_commit_cleanup",
        Bound::Preemptions(3),
        m::hint_commit_cleanup,
    );
}
