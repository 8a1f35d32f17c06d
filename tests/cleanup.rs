//! The cleanup thread's reliability: a clock that wakes the store under its own lock does not
//! deadlock it, a backward step of the wall clock does not stall it, and a panicking pass does
//! not end it.
//!
//! Time is a [`TestClock`] (`tests/common/test_clock.rs`) watching the cleanup thread: a
//! `ManualClock` whose readings take a lock of the clock's own and tell the test each time the
//! cleanup thread reads. The test waits for those reports (with a bound that only detects a
//! hang), never sleeps.

mod common;

use common::test_clock::{drop_bounded, started, wait_for, TestClock, Watch, HANG};
use memsession::{Clock, MemStore};
use std::sync::atomic::Ordering;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_secs(10);

fn store(clock: &TestClock) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(INTERVAL)
        .shards(1)
        .build()
}

/// A clock that calls the store's waker while holding its own lock, which its readings also
/// take, while the cleanup thread reads it. Reading the clock under the thread's mutex (which
/// the waker takes) deadlocks both, and then `drop` hangs too.
#[test]
fn a_clock_waking_the_store_under_its_own_lock_does_not_deadlock() {
    let (clock, reads) = TestClock::new(Watch::Cleanup);
    let store = store(&clock);
    started(&reads);
    let done_rx = clock.wake_under_own_lock(reads);
    match done_rx.recv_timeout(HANG) {
        Ok(read) => assert!(read, "the cleanup thread never read the clock after a wake"),
        Err(_) => {
            // Dropping the store would join its deadlocked thread: leak it instead.
            std::mem::forget(store);
            panic!(
                "deadlock: the clock's waker blocked for {HANG:?} while the cleanup thread \
                 read the clock under its mutex"
            );
        }
    }
    drop_bounded(store);
}

/// A backward step of the wall clock (an operator, NTP) does not stall cleanup: the next pass
/// runs one interval of elapsed time after the previous one, whatever the wall clock says.
#[test]
fn a_backward_wall_clock_step_does_not_delay_the_next_pass() {
    let (clock, reads) = TestClock::new(Watch::Cleanup);
    let store = store(&clock);
    store
        .commit("t", "x", clock.now() + Duration::from_secs(1))
        .unwrap();
    started(&reads);
    clock.time.set(clock.now() - Duration::from_secs(3600)); // the wall clock steps back 1 h
    clock.time.advance(INTERVAL); // one interval passes
    wait_for(
        &store,
        &reads,
        "the pass one interval after a backward wall-clock step",
        |s| s.stats().cleanup_passes >= 1,
    );
    // The pass reclaimed by the wall clock: 1 h before the session's deadline, nothing.
    assert_eq!(store.stats().reclaimed, 0);
    assert_eq!(store.len(), 1);
    // And the next interval's pass runs on time too.
    clock.time.advance(INTERVAL);
    wait_for(&store, &reads, "the second pass", |s| {
        s.stats().cleanup_passes >= 2
    });
    drop_bounded(store);
}

/// A pass that panics (here the clock's `now`, once) is caught and counted, and cleanup goes
/// on: the next pass runs one interval later and reclaims what is due.
#[test]
fn a_panicking_pass_is_counted_and_the_next_pass_runs() {
    let (clock, reads) = TestClock::new(Watch::Cleanup);
    let store = store(&clock);
    store
        .commit("t", "x", clock.now() + Duration::from_secs(1))
        .unwrap();
    started(&reads);
    clock.panic_next.store(true, Ordering::SeqCst);
    clock.time.advance(INTERVAL);
    wait_for(&store, &reads, "the panic counted", |s| {
        s.stats().cleanup_panics >= 1
    });
    assert_eq!(
        store.stats().cleanup_passes,
        0,
        "the panicking pass swept nothing"
    );
    assert_eq!(store.len(), 1);
    clock.time.advance(INTERVAL);
    wait_for(&store, &reads, "the pass after a panicking one", |s| {
        s.stats().cleanup_passes >= 1
    });
    let stats = store.stats();
    assert_eq!((stats.cleanup_panics, stats.reclaimed), (1, 1));
    assert!(store.is_empty());
    drop_bounded(store);
}
