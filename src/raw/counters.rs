//! The raw store's counters, summed on demand into [`Stats`](crate::Stats). Outside the
//! protocol: nothing decides anything by them.

use super::shard::Miss;
use crate::sync::StatU64;
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering::Relaxed;

/// What cleanup, eviction and their callers count.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) passes: StatU64,
    pub(crate) reclaimed: StatU64,
    pub(crate) rescheduled: StatU64,
    pub(crate) stale: StatU64,
    pub(crate) evicted: StatU64,
    pub(crate) cleanup_panics: StatU64,
}

impl Counters {
    pub(crate) fn get(c: &StatU64) -> u64 {
        c.load(Relaxed)
    }

    pub(crate) fn add(c: &StatU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Relaxed);
        }
    }
}

/// Read counters striped by thread: twice as many cache-line stripes as cores, handed to
/// threads round-robin, so no counter is shared by all readers; summed on demand.
#[derive(Debug)]
pub(crate) struct ReadStats {
    stripes: Box<[CachePadded<ReadStripe>]>,
}

#[derive(Debug, Default)]
pub(crate) struct ReadStripe {
    pub(crate) hits: StatU64,
    pub(crate) misses: StatU64,
    pub(crate) expired: StatU64,
}

impl ReadStats {
    pub(crate) fn new() -> Self {
        let n =
            (std::thread::available_parallelism().map_or(4, |n| n.get()) * 2).next_power_of_two();
        ReadStats {
            stripes: (0..n)
                .map(|_| CachePadded::new(ReadStripe::default()))
                .collect(),
        }
    }

    /// Counts a read's outcome on this thread's stripe.
    #[inline]
    pub(crate) fn record<T>(&self, r: &Result<T, Miss>) {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                NEXT.fetch_add(1, Relaxed)
            };
        }
        let i = STRIPE.try_with(|s| *s).unwrap_or(0) & (self.stripes.len() - 1);
        let stripe = &self.stripes[i];
        let counter = match r {
            Ok(_) => &stripe.hits,
            Err(Miss::Absent) => &stripe.misses,
            Err(Miss::Expired) => &stripe.expired,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// The sum of one counter over the stripes.
    pub(crate) fn sum(&self, f: impl Fn(&ReadStripe) -> &StatU64) -> u64 {
        self.stripes.iter().map(|s| f(s).load(Relaxed)).sum()
    }
}
