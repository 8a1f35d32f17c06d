//! Leaks: after a workload (commits, overwrites, deletes, expiry, cleanup on several threads,
//! with the cleanup thread running), dropping the store frees everything it allocated.
//! Measured with a counting global allocator; `.ci/run` also runs this binary under valgrind
//! (0 bytes definitely lost), sized down by `MEMSTORE_LEAK_SESSIONS`, and so also checks that
//! a store on the system clock runs under valgrind at all.

use memsession::{Clock, ManualClock, MemStore};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The tests of this file one at a time: the leak test's byte count is process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn sessions() -> u64 {
    std::env::var("MEMSTORE_LEAK_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000)
}

fn workload(n: u64) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30));
    let store = MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::from_secs(60))
        .build();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (store, clock) = (&store, &clock);
            s.spawn(move || {
                for i in 0..n {
                    let token = format!("t{t}-{}", i % (n / 4).max(1));
                    let ttl = Duration::from_secs(30 + i % 90);
                    store
                        .commit(&token, vec![i as u8; 128], clock.now() + ttl)
                        .unwrap();
                    match i % 10 {
                        0 => store.delete(&token),
                        1 => {
                            // Shortening: leaves a stale entry for cleanup to drop.
                            store
                                .commit(&token, "short", clock.now() + Duration::from_secs(5))
                                .unwrap();
                        }
                        _ => {
                            let _ = store.find(&token);
                        }
                    }
                    if t == 0 && i % 1_000 == 0 {
                        clock.advance(Duration::from_secs(60)); // the cleanup thread runs
                        store.cleanup_now();
                    }
                }
            });
        }
    });
    assert!(!store.is_empty(), "the store is dropped full");
    drop(store);
}

/// Lets crossbeam-epoch run every destruction deferred so far.
fn flush_epoch() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

#[test]
fn dropping_the_store_frees_everything() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Warm-up: one-time allocations (hasher seeds, the epoch collector, thread-locals).
    workload(1_000);
    flush_epoch();
    let before = LIVE.load(Ordering::Relaxed);
    let n = sessions();
    workload(n);
    flush_epoch();
    let after = LIVE.load(Ordering::Relaxed);
    let grown = after - before;
    // A leak of even 1% of the sessions (each about `SESSION_OVERHEAD` bytes beyond its token
    // and data) would show; the slack covers epoch bookkeeping of the threads that exited.
    assert!(
        grown < 64 * 1024,
        "{grown} bytes still allocated after dropping a store of {n} sessions"
    );
}

/// The system clock is read the way a program under valgrind (or another tool that hides the
/// vDSO's ELF image) can follow: through libc, not by parsing the vDSO ourselves.
#[test]
fn a_store_on_the_system_clock_commits_finds_and_deletes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let store = MemStore::builder().cleanup_interval(Duration::ZERO).build();
    let later = SystemTime::now() + Duration::from_secs(60);
    store.commit("t", "data", later).unwrap();
    assert_eq!(store.find("t").as_deref(), Some(&b"data"[..]));
    let (before, now) = (SystemTime::now(), store.now());
    assert!(before <= now && now <= SystemTime::now());
    store.touch("t", now - Duration::from_secs(1)).unwrap(); // an expiry in the past: gone
    assert_eq!(store.find("t"), None);
}
