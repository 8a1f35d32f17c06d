//! Time: the [`Clock`] trait, the real [`SystemClock`] and the test [`ManualClock`].
//!
//! The store keeps deadlines as nanoseconds since the Unix epoch in a `u64`; every read of
//! "now" goes through the store's clock, so tests (and loom models) control time completely.

use crate::sync::{self, AtomicU64, Mutex, Ordering};
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for a [`MemStore`](crate::MemStore).
///
/// The default is [`SystemClock`]. Tests use [`ManualClock`], which only moves when told to.
/// A clock that jumps (backwards or forwards) never corrupts a store: sessions simply expire
/// later or earlier.
///
/// ```
/// use memsession::{Clock, SystemClock};
/// use std::time::SystemTime;
///
/// let before = SystemTime::now();
/// assert!(SystemClock.now() >= before);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// A monotonic reading: the time elapsed since an origin fixed for this clock. It never
    /// goes backwards, whatever the wall clock does, and paces the store's background work
    /// (cleanup passes, periodic snapshots): a backward step of the wall clock does not delay
    /// the next pass or snapshot, and a forward one does not bring it sooner.
    ///
    /// The default reads [`Instant`] (real time since the first call in this process), which
    /// is right for every clock that follows real time. A clock whose time moves other than
    /// with real time overrides it, as [`ManualClock`] does: with the default, its moves wake
    /// the store's background thread (see [`subscribe`](Clock::subscribe)) but a job comes due only
    /// when an interval of real time has passed.
    ///
    /// ```
    /// use memsession::{Clock, SystemClock};
    ///
    /// let a = SystemClock.monotonic();
    /// assert!(SystemClock.monotonic() >= a);
    /// ```
    fn monotonic(&self) -> Duration {
        real_monotonic()
    }

    /// Called once by each store that runs background work (cleanup passes, periodic
    /// snapshots) on this clock. A clock whose time moves other than with real time (like
    /// [`ManualClock`]) keeps the waker and calls [`ClockWaker::wake`] whenever its time moves,
    /// so the store's background thread notices at once and runs whichever job came due; it
    /// also overrides [`monotonic`](Clock::monotonic), which paces the thread. The default
    /// does nothing: real time wakes the thread by itself.
    fn subscribe(&self, waker: ClockWaker) {
        let _ = waker;
    }
}

/// The real wall clock, [`SystemTime::now`].
///
/// ```
/// use memsession::{MemStore, SystemClock};
/// let store = MemStore::builder().clock(SystemClock).build();
/// assert!(store.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A handle with which a [`Clock`] wakes one store's background thread (its ticker: cleanup
/// passes and periodic snapshots) when its time moves.
///
/// It holds the store weakly: once the store is dropped, [`wake`](ClockWaker::wake) returns
/// `false` and the clock may forget the waker.
#[derive(Clone)]
pub struct ClockWaker(pub(crate) Weak<dyn Wake>);

/// What a [`ClockWaker`] wakes (the ticker's shared state, `ticker.rs`).
pub(crate) trait Wake: Send + Sync {
    fn wake(&self);
}

impl ClockWaker {
    /// Wakes the store's background thread (its ticker) so that it re-reads the clock and runs
    /// whichever job came due: a cleanup pass, a periodic snapshot. Returns `false` once the
    /// store is gone.
    ///
    /// ```
    /// use memsession::{ManualClock, MemStore};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    /// let store = MemStore::builder()
    ///     .clock(clock.clone())
    ///     .cleanup_interval(Duration::from_secs(1))
    ///     .build();
    /// clock.advance(Duration::from_secs(1)); // wakes the store's background thread
    /// drop(store);
    /// ```
    pub fn wake(&self) -> bool {
        match self.0.upgrade() {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        }
    }
}

impl fmt::Debug for ClockWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockWaker")
            .field("alive", &(self.0.strong_count() > 0))
            .finish()
    }
}

/// A clock that moves only when told to: for tests, simulations and model checking.
///
/// Clones share one time. [`advance`](ManualClock::advance) and [`set`](ManualClock::set) wake
/// every store's background thread that runs on this clock, so a test drives cleanup passes
/// and periodic snapshots by moving time, never by sleeping.
///
/// It keeps two readings, as a real system does: the wall clock ([`Clock::now`]) and a
/// monotonic one ([`Clock::monotonic`], which paces the store's background work). `advance` is time
/// passing: it moves both. `set` is a step of the wall clock (an operator or NTP setting
/// it): it moves only the wall reading.
///
/// ```
/// use memsession::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(105));
/// assert_eq!(clock.monotonic(), Duration::from_secs(5));
/// clock.set(UNIX_EPOCH); // jumps backwards too
/// assert_eq!(clock.now(), UNIX_EPOCH);
/// assert_eq!(clock.monotonic(), Duration::from_secs(5)); // a wall step: not time passing
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    nanos: AtomicU64,
    /// The monotonic reading, in nanoseconds since the clock was made.
    mono: AtomicU64,
    wakers: Mutex<Vec<ClockWaker>>,
}

impl ManualClock {
    /// A clock that reads `start` until moved. Times before the Unix epoch read as the epoch;
    /// times past the year 2554 as the latest representable instant.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                nanos: AtomicU64::new(to_nanos_saturating(start)),
                mono: AtomicU64::new(0),
                wakers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves the clock forward by `by` (saturating): time passes, so both the wall and the
    /// monotonic reading move. Then wakes every subscribed store's background thread (its
    /// ticker), which runs whatever became due: a cleanup pass, a periodic snapshot.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        saturating_add(&self.inner.nanos, by);
        saturating_add(&self.inner.mono, by);
        self.wake_all();
    }

    /// Sets the wall clock to `to` (forwards or backwards), then wakes every subscribed
    /// store's background thread. A step of the wall clock, not time passing: the monotonic
    /// reading stays, so a store's background work (cleanup passes, periodic snapshots) keeps
    /// its pace.
    pub fn set(&self, to: SystemTime) {
        self.inner
            .nanos
            .store(to_nanos_saturating(to), Ordering::Release);
        self.wake_all();
    }

    fn wake_all(&self) {
        sync::lock(&self.inner.wakers).retain(ClockWaker::wake);
    }
}

fn saturating_add(a: &AtomicU64, by: u64) {
    let mut cur = a.load(Ordering::Acquire);
    loop {
        match a.compare_exchange_weak(
            cur,
            cur.saturating_add(by),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(actual) => cur = actual,
        }
    }
}

/// Real time elapsed since the first monotonic reading in this process.
fn real_monotonic() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        from_nanos(self.inner.nanos.load(Ordering::Acquire))
    }

    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.inner.mono.load(Ordering::Acquire))
    }

    fn subscribe(&self, waker: ClockWaker) {
        sync::lock(&self.inner.wakers).push(waker);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

/// `t` as nanoseconds since the Unix epoch: `Some(0)` for times before it, `None` past `u64`.
pub(crate) fn to_nanos(t: SystemTime) -> Option<u64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_nanos()).ok(),
        Err(_) => Some(0),
    }
}

pub(crate) fn to_nanos_saturating(t: SystemTime) -> u64 {
    to_nanos(t).unwrap_or(u64::MAX)
}

pub(crate) fn from_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

/// [`SystemTime::now`] as [`to_nanos_saturating`] would give it. On Linux the same clock
/// (`CLOCK_REALTIME`, libc's vDSO read) through rustix, with no `SystemTime` in between:
/// every find and commit reads the clock, and the conversion was a third of the read.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn system_now_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let (Ok(secs), Ok(nanos)) = (u64::try_from(t.tv_sec), u64::try_from(t.tv_nsec)) else {
        return 0; // before the epoch (a normalised timespec's nanoseconds are never negative)
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .unwrap_or(u64::MAX)
}

/// [`SystemTime::now`] as [`to_nanos_saturating`] gives it.
#[cfg(not(target_os = "linux"))]
#[inline]
pub(crate) fn system_now_nanos() -> u64 {
    to_nanos_saturating(SystemTime::now())
}

/// The store's clock: the system clock without dynamic dispatch on the hot path, or any other.
#[derive(Debug, Clone)]
pub(crate) enum StoreClock {
    System,
    Custom(Arc<dyn Clock>),
}

impl StoreClock {
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            StoreClock::System => system_now_nanos(),
            StoreClock::Custom(c) => to_nanos_saturating(c.now()),
        }
    }

    /// The monotonic reading ([`Clock::monotonic`]) in nanoseconds: paces the ticker.
    pub(crate) fn monotonic_nanos(&self) -> u64 {
        let d = match self {
            StoreClock::System => real_monotonic(),
            StoreClock::Custom(c) => c.monotonic(),
        };
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn subscribe(&self, waker: ClockWaker) {
        if let StoreClock::Custom(c) = self {
            c.subscribe(waker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast read is the wall clock, in nanoseconds: between two `SystemTime::now` readings
    /// taken around it (a monotonic clock, or seconds scaled wrong, falls outside).
    #[test]
    fn system_now_nanos_reads_the_wall_clock() {
        for _ in 0..1000 {
            let before = to_nanos_saturating(SystemTime::now());
            let now = system_now_nanos();
            let after = to_nanos_saturating(SystemTime::now());
            assert!(
                before <= now && now <= after,
                "{before} <= {now} <= {after}"
            );
        }
    }
}
