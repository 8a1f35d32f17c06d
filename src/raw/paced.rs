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
//! Bounded: a thread keeps at most [`KEEP`] values and [`KEEP_BYTES`] bytes of them, only
//! those its owner calls keepable (inline versions: at most
//! [`FIND_COPY_LIMIT`](super::FIND_COPY_LIMIT) bytes of data each), and only once it has
//! allocated one itself, so a thread that only reads or runs cleanup passes frees at once.
//! What a thread keeps is freed by its next allocations, or when it exits. Outside the
//! protocol: a kept value is one no guard can see any more.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The most released values one thread keeps for its next allocations. A collection
/// releases up to 512 objects at once, to whichever thread runs it, so with several writing
/// threads what one thread keeps rises and falls by hundreds; a bound near that swing sends
/// a thread that ran dry to the allocator's locked bins while another frees past its bound
/// into them (BENCHMARKS.md, "Paced frees").
const KEEP: usize = 2048;

/// The most bytes (allocation sizes) one thread keeps: 2048 versions of 128-byte sessions,
/// fewer of larger ones.
const KEEP_BYTES: usize = 512 * 1024;

/// Room reserved for a thread's list at its first allocation; the list grows up to [`KEEP`].
const RESERVE: usize = 64;

/// One thread's kept values. Their list has room reserved from the thread's first
/// allocation on ([`before_alloc`]), so a list with no capacity says the thread allocates
/// none: it keeps nothing.
pub(crate) struct Kept<T> {
    list: RefCell<List<T>>,
}

/// Kept values with their sizes, and the sizes' sum.
struct List<T> {
    values: Vec<(T, usize)>,
    bytes: usize,
}

impl<T> List<T> {
    fn pop(&mut self) -> Option<T> {
        let (v, n) = self.values.pop()?;
        self.bytes -= n;
        Some(v)
    }
}

impl<T> Kept<T> {
    pub(crate) const fn new() -> Self {
        Kept {
            list: RefCell::new(List {
                values: Vec::new(),
                bytes: 0,
            }),
        }
    }
}

/// Frees `v`, which the epoch has released, now or (with `size`, the bytes it holds: see
/// the module) just before this thread's next allocation of its kind.
pub(crate) fn release<T: 'static>(kept: &'static LocalKey<Kept<T>>, v: T, size: Option<usize>) {
    // What the closure gives back (or, if this thread's storage is gone, the closure itself
    // with `v`) is dropped after the borrow ends: freeing a value never reenters this module.
    let _not_kept = kept.try_with(move |k| {
        let Some(n) = size else {
            return Some(v);
        };
        match k.list.try_borrow_mut() {
            // Reserved (the thread allocates) and within both bounds.
            Ok(mut l)
                if l.values.capacity() > 0
                    && l.values.len() < KEEP
                    && l.bytes + n <= KEEP_BYTES =>
            {
                l.values.push((v, n));
                l.bytes += n;
                None
            }
            _ => Some(v),
        }
    });
}

/// Frees one kept value (two while over half of either bound is kept), before this thread
/// allocates one.
#[inline]
pub(crate) fn before_alloc<T: 'static>(kept: &'static LocalKey<Kept<T>>) {
    let _freed = kept.try_with(|k| {
        let mut l = k.list.try_borrow_mut().ok()?;
        if l.values.capacity() == 0 {
            l.values.reserve_exact(RESERVE);
        }
        let first = l.pop();
        let second = if l.values.len() > KEEP / 2 || l.bytes > KEEP_BYTES / 2 {
            l.pop()
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
        KEPT.with(|k| k.list.borrow().values.len())
    }

    #[test]
    fn a_thread_keeps_values_only_once_it_allocates_and_at_most_keep() {
        std::thread::spawn(|| {
            release(&KEPT, Box::new(1), Some(4));
            assert_eq!(kept(), 0, "a thread that never allocated frees at once");
            before_alloc(&KEPT);
            for i in 0..KEEP as u32 + 10 {
                release(&KEPT, Box::new(i), Some(4));
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
            release(&KEPT, Box::new(1), None);
            assert_eq!(kept(), 0);
            release(&KEPT, Box::new(2), Some(4));
            assert_eq!(kept(), 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_keeps_at_most_keep_bytes() {
        std::thread::spawn(|| {
            before_alloc(&KEPT);
            let quarter = KEEP_BYTES / 4;
            for i in 0..6 {
                release(&KEPT, Box::new(i), Some(quarter));
            }
            assert_eq!(kept(), 4, "the bytes bound holds before the count's");
            release(&KEPT, Box::new(7), Some(1));
            assert_eq!(kept(), 4, "full: even a small one is freed at once");
            // Over half the bytes: each allocation frees two.
            before_alloc(&KEPT);
            assert_eq!(kept(), 2);
            before_alloc(&KEPT);
            assert_eq!(kept(), 1, "at most half the bytes: one per allocation");
            release(&KEPT, Box::new(8), Some(quarter));
            assert_eq!(kept(), 2, "room again once freed");
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
                release(&COUNTED, Counted, Some(8));
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
