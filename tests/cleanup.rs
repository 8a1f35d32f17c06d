//! The cleanup thread's reliability: a clock that wakes the store under its own lock does not
//! deadlock it, a backward step of the wall clock does not stall it, and a panicking pass does
//! not end it.
//!
//! Time is a [`TestClock`]: a [`ManualClock`] whose readings take a lock of the clock's own
//! and tell the test each time the cleanup thread reads. The test waits for those reports
//! (with a bound that only detects a hang), never sleeps.

use memsession::{Clock, ClockWaker, ManualClock, MemStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(10);
const INTERVAL: Duration = Duration::from_secs(10);

/// What the cleanup thread did with the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// It is about to take the clock's lock for a reading.
    Enter,
    /// It has read the clock (and released its lock).
    Done,
}

#[derive(Debug, Clone)]
struct TestClock {
    time: ManualClock,
    /// The clock's own lock: every reading takes it.
    lock: Arc<Mutex<()>>,
    reads: Arc<Mutex<Sender<Read>>>,
    /// The next `now` on the cleanup thread panics.
    panic_next: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<ClockWaker>>>,
}

fn on_cleanup_thread() -> bool {
    std::thread::current().name() == Some("memstore-ticker")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestClock {
    fn new() -> (TestClock, Receiver<Read>) {
        let (tx, rx) = channel();
        let clock = TestClock {
            time: ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            lock: Arc::new(Mutex::new(())),
            reads: Arc::new(Mutex::new(tx)),
            panic_next: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Mutex::new(None)),
        };
        (clock, rx)
    }

    /// Reports what the cleanup thread does (`Enter` before it takes the clock's lock, so
    /// that the test sees a thread that is about to block on it).
    fn report(&self, read: Read) {
        if on_cleanup_thread() {
            let _ = lock(&self.reads).send(read);
        }
    }

    fn waker(&self) -> ClockWaker {
        lock(&self.waker).clone().expect("the store subscribed")
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.report(Read::Enter);
        if on_cleanup_thread() && self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("injected: the test clock's `now` panics once");
        }
        let now = {
            let _held = lock(&self.lock);
            self.time.now()
        };
        self.report(Read::Done);
        now
    }

    fn monotonic(&self) -> Duration {
        self.report(Read::Enter);
        let mono = {
            let _held = lock(&self.lock);
            self.time.monotonic()
        };
        self.report(Read::Done);
        mono
    }

    fn subscribe(&self, waker: ClockWaker) {
        *lock(&self.waker) = Some(waker.clone());
        self.time.subscribe(waker);
    }
}

fn store(clock: &TestClock) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(INTERVAL)
        .shards(1)
        .build()
}

/// The next report of the cleanup thread; panics if none comes (the thread hangs or died).
fn next_read(reads: &Receiver<Read>, what: &str) -> Read {
    reads
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what}: the cleanup thread read no clock for {HANG:?}"))
}

/// Waits until the cleanup thread has finished a reading: it started and will next wait (or
/// read again), holding none of the clock's locks.
fn started(reads: &Receiver<Read>) {
    while next_read(reads, "start") != Read::Done {}
}

/// Waits until `done` holds, re-checking after each reading of the cleanup thread: a pass
/// updates the stats before the thread reads the clock again, so once the thread is idle
/// `done` has its final value.
fn wait_for(
    store: &MemStore,
    reads: &Receiver<Read>,
    what: &str,
    done: impl Fn(&MemStore) -> bool,
) {
    while !done(store) {
        next_read(reads, what);
    }
}

/// Drops `store` on another thread, failing (and leaking the stuck thread) if that hangs.
fn drop_bounded(store: MemStore) {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        drop(store);
        let _ = tx.send(());
    });
    rx.recv_timeout(HANG)
        .expect("dropping the store hung: its cleanup thread never exited");
}

/// A clock that calls the store's waker while holding its own lock, which its readings also
/// take, while the cleanup thread reads it. Reading the clock under the thread's mutex (which
/// the waker takes) deadlocks both, and then `drop` hangs too.
#[test]
fn a_clock_waking_the_store_under_its_own_lock_does_not_deadlock() {
    let (clock, reads) = TestClock::new();
    let store = store(&clock);
    started(&reads);
    let (done_tx, done_rx) = channel();
    let c = clock.clone();
    std::thread::spawn(move || {
        let held = lock(&c.lock);
        // Time passes: the waker wakes the thread, which reads the clock and blocks on its
        // lock (held here).
        c.time.advance(Duration::from_secs(1));
        // (Its next `Enter`: any earlier report came from a reading that had ended.)
        let read = loop {
            match reads.recv_timeout(HANG) {
                Ok(Read::Done) => continue,
                other => break other,
            }
        };
        // The clock wakes the store again, still under its own lock.
        c.waker().wake();
        drop(held);
        let _ = done_tx.send(read.is_ok());
    });
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
    let (clock, reads) = TestClock::new();
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
    let (clock, reads) = TestClock::new();
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
