//! The clock of the background-work tests (`tests/cleanup.rs`, `tests/ticker.rs`): a
//! [`ManualClock`] whose readings take a lock of the clock's own and tell the test each time a
//! watched store thread reads it, so that the tests wait for those reports (with a bound that
//! only detects a hang) and never sleep.

use memsession::{Clock, ClockWaker, ManualClock, MemStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Long enough that only a hang reaches it.
pub const HANG: Duration = Duration::from_secs(10);

/// What a watched store thread did with the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// It is about to take the clock's lock for a reading.
    Enter,
    /// It has read the clock (and released its lock).
    Done,
}

/// Which of the store's threads a [`TestClock`] watches: reports the readings of, and panics
/// on when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The cleanup thread (`memstore-ticker`) only.
    Cleanup,
    /// Every background thread of the store (all named `memstore-...`).
    Store,
}

impl Watch {
    /// Whether the current thread is one this clock watches.
    fn current(self) -> bool {
        let thread = std::thread::current();
        match self {
            Watch::Cleanup => thread.name() == Some("memstore-ticker"),
            Watch::Store => thread.name().is_some_and(|n| n.starts_with("memstore-")),
        }
    }
}

/// Where a held save reports that it has started, and the gate it waits at.
pub type Hold = (Sender<()>, Gate);

/// A [`ManualClock`] that reports the readings of the threads it watches.
#[derive(Debug, Clone)]
pub struct TestClock {
    /// The time it reads.
    pub time: ManualClock,
    /// The clock's own lock: every reading takes it.
    pub lock: Arc<Mutex<()>>,
    /// The threads whose readings are reported (and may panic).
    watch: Watch,
    reads: Arc<Mutex<Sender<Read>>>,
    /// The next `now` on a watched thread panics.
    pub panic_next: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<ClockWaker>>>,
    /// While set, a reading on the save thread reports itself here and waits at the gate.
    pub hold_saves: Arc<Mutex<Option<Hold>>>,
}

/// Locks `m`, ignoring poisoning (a test's injected panic may have poisoned it).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestClock {
    /// A clock at [`super::START`] watching `watch`, and the reports of its readings.
    pub fn new(watch: Watch) -> (TestClock, Receiver<Read>) {
        let (tx, rx) = channel();
        let clock = TestClock {
            time: super::clock(),
            lock: Arc::new(Mutex::new(())),
            watch,
            reads: Arc::new(Mutex::new(tx)),
            panic_next: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Mutex::new(None)),
            hold_saves: Arc::new(Mutex::new(None)),
        };
        (clock, rx)
    }

    /// Reports what a watched thread does (`Enter` before it takes the clock's lock, so that
    /// the test sees a thread that is about to block on it).
    fn report(&self, read: Read) {
        if self.watch.current() {
            let _ = lock(&self.reads).send(read);
        }
    }

    /// The waker the store subscribed with.
    pub fn waker(&self) -> ClockWaker {
        lock(&self.waker).clone().expect("the store subscribed")
    }

    /// On another thread, holds the clock's own lock while a second passes and a watched
    /// thread comes to read, then wakes the store under that lock; sends whether a reading came.
    pub fn wake_under_own_lock(&self, reads: Receiver<Read>) -> Receiver<bool> {
        let (done_tx, done_rx) = channel();
        let c = self.clone();
        std::thread::spawn(move || {
            let held = lock(&c.lock);
            // Time passes: the waker wakes the store, whose background thread reads the clock
            // and blocks on its lock (held here).
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
        done_rx
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.report(Read::Enter);
        if self.watch.current() && self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("injected: the test clock's `now` panics once");
        }
        if std::thread::current().name() == Some("memstore-snapshot") {
            let held = lock(&self.hold_saves).clone();
            if let Some((entered, gate)) = held {
                let _ = entered.send(());
                gate.wait();
            }
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

/// A gate that a test's stand-in save waits at until the test opens it.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Waits until the gate is open.
    pub fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut g = lock(open);
        while !*g {
            g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Opens the gate for every waiter, now and later.
    pub fn open(&self) {
        let (open, cv) = &*self.0;
        *lock(open) = true;
        cv.notify_all();
    }
}

/// The next report of a watched thread; panics if none comes (the thread hangs or died).
pub fn next_read(reads: &Receiver<Read>, what: &str) -> Read {
    reads
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what}: no watched store thread read the clock for {HANG:?}"))
}

/// Waits until a watched thread has finished a reading: it started and will next wait (or
/// read again), holding none of the clock's locks.
pub fn started(reads: &Receiver<Read>) {
    while next_read(reads, "start") != Read::Done {}
}

/// Waits until `done` holds, re-checking after each reading of a watched thread: the store's
/// background work updates the stats before it reads the clock again, so once the thread is
/// idle `done` has its final value.
pub fn wait_for(
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
pub fn drop_bounded(store: MemStore) {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        drop(store);
        let _ = tx.send(());
    });
    rx.recv_timeout(HANG)
        .expect("dropping the store hung: its background thread never exited");
}
