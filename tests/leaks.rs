//! Leaks: after a workload (commits, overwrites, deletes, expiry, cleanup on several threads,
//! with the cleanup thread running), dropping the store frees everything it allocated.
//! Measured with a counting global allocator; `.ci/run` also runs this binary under valgrind
//! (0 bytes definitely lost), sized down by `MEMSTORE_LEAK_SESSIONS`.

use memsession::{Clock, ManualClock, MemStore};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime};

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
