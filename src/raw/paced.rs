//! Paced frees of what the epoch releases (versions: `version.rs` holds their thread-local
//! [`Kept`] list).
//!
//! crossbeam-epoch frees what threads retired in bursts (a collection runs up to eight bags
//! of 64 deferred frees at once), and glibc's per-thread cache holds only seven chunks of a
//! size: a burst overflows into the arena's bins, so the versions that overwrites allocate
//! next come from the bins (a lock, and chunks that are cold) instead of the cache. So a
//! version the epoch has released is kept by the thread whose collection released it, and
//! freed just before that thread allocates its next version, which then takes the same
//! chunk back from the cache: one free, then one allocation, as a `HashMap` overwrite does.
//! Measured in BENCHMARKS.md ("Paced frees").
//!
//! Bounded: a thread keeps at most [`KEEP`] values, only those its owner calls keepable
//! (inline versions: at most [`FIND_COPY_LIMIT`](super::FIND_COPY_LIMIT) bytes of data
//! each), and only once it has allocated one itself, so a thread that only reads or runs
//! cleanup passes frees at once. What a thread keeps is freed by its next allocations, or
//! when it exits. Outside the protocol: a kept value is one no guard can see any more.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The most released values one thread keeps for its next allocations. A collection
/// releases at most 512 objects, of which versions are a part; half of that already keeps
/// glibc's cache hits at 99.9% for an overwrite-heavy thread (BENCHMARKS.md).
const KEEP: usize = 256;

/// One thread's kept values. Their list has room reserved from the thread's first
/// allocation on ([`before_alloc`]), so a list with no capacity says the thread allocates
/// none: it keeps nothing.
pub(crate) struct Kept<T> {
    values: RefCell<Vec<T>>,
}

impl<T> Kept<T> {
    pub(crate) const fn new() -> Self {
        Kept {
            values: RefCell::new(Vec::new()),
        }
    }
}

/// Frees `v`, which the epoch has released, now or (if `keepable`, see the module) just
/// before this thread's next allocation of its kind.
pub(crate) fn release<T: 'static>(kept: &'static LocalKey<Kept<T>>, v: T, keepable: bool) {
    // What the closure gives back (or, if this thread's storage is gone, the closure itself
    // with `v`) is dropped after the borrow ends: freeing a value never reenters this module.
    let _not_kept = kept.try_with(move |k| {
        if !keepable {
            return Some(v);
        }
        match k.values.try_borrow_mut() {
            // Reserved (the thread allocates) and not full.
            Ok(mut values) if values.len() < values.capacity().min(KEEP) => {
                values.push(v);
                None
            }
            _ => Some(v),
        }
    });
}

/// Frees one kept value (two while more than half of [`KEEP`] are kept), before this
/// thread allocates one.
#[inline]
pub(crate) fn before_alloc<T: 'static>(kept: &'static LocalKey<Kept<T>>) {
    let _freed = kept.try_with(|k| {
        let mut values = k.values.try_borrow_mut().ok()?;
        if values.capacity() == 0 {
            values.reserve_exact(KEEP);
        }
        let first = values.pop();
        let second = if values.len() > KEEP / 2 {
            values.pop()
        } else {
            None
        };
        Some((first, second))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static KEPT: Kept<Box<u32>> = const { Kept::new() };
    }

    fn kept() -> usize {
        KEPT.with(|k| k.values.borrow().len())
    }

    #[test]
    fn a_thread_keeps_values_only_once_it_allocates_and_at_most_keep() {
        std::thread::spawn(|| {
            release(&KEPT, Box::new(1), true);
            assert_eq!(kept(), 0, "a thread that never allocated frees at once");
            before_alloc(&KEPT);
            for i in 0..KEEP as u32 + 10 {
                release(&KEPT, Box::new(i), true);
            }
            assert_eq!(kept(), KEEP, "a full thread frees at once");
            // Over half full: each allocation frees two.
            before_alloc(&KEPT);
            assert_eq!(kept(), KEEP - 2);
            while kept() > KEEP / 2 {
                before_alloc(&KEPT);
            }
            let at = kept();
            before_alloc(&KEPT);
            assert_eq!(kept(), at - 1, "at most half full: one per allocation");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_value_not_keepable_is_freed_at_once() {
        std::thread::spawn(|| {
            before_alloc(&KEPT);
            release(&KEPT, Box::new(1), false);
            assert_eq!(kept(), 0);
            release(&KEPT, Box::new(2), true);
            assert_eq!(kept(), 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn what_a_thread_keeps_is_freed_when_it_exits() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        thread_local! {
            static COUNTED: Kept<Counted> = const { Kept::new() };
        }
        std::thread::spawn(|| {
            before_alloc(&COUNTED);
            for _ in 0..10 {
                release(&COUNTED, Counted, true);
            }
            assert_eq!(DROPPED.load(Ordering::Relaxed), 0, "kept, not freed");
            before_alloc(&COUNTED);
            assert_eq!(
                DROPPED.load(Ordering::Relaxed),
                1,
                "one freed per allocation"
            );
        })
        .join()
        .unwrap();
        assert_eq!(
            DROPPED.load(Ordering::Relaxed),
            10,
            "the rest freed at exit"
        );
    }
}
