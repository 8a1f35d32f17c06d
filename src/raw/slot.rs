//! The version slot: an epoch-managed atomic pointer to a node's current value, or null (the
//! tombstone). With `version.rs` (the version's layout), the only places in the crate with
//! `unsafe` code.
//!
//! Invariants kept here:
//! - A pointer in the slot is either null or came from `Box`/`Owned` and is owned by the slot.
//! - A version leaves the slot only through [`Slot::compare_exchange`] or
//!   [`Slot::compare_tombstone`], whose CAS has exactly one winner; the winner retires it
//!   to the epoch, exactly once; once no guard can see it, the epoch hands it to its type's
//!   [`Reclaim`] (versions are freed paced: `paced.rs`).
//! - While a thread's guard is pinned, no version it loaded can be freed, so its address
//!   cannot be reused: a CAS against a loaded version is exact (no ABA).
//! - Null is final: no operation stores a version into a slot that holds null.

use crate::sync::Guard;

#[cfg(not(memstore_loom))]
mod imp {
    use super::Guard;
    use crossbeam_epoch::{Atomic, Owned, Pointable, Shared};
    use std::sync::atomic::Ordering;

    pub(crate) struct Slot<T: ?Sized + Pointable> {
        ptr: Atomic<T>,
    }

    /// How a value the epoch has released (no guard can see it any more) is freed: at once
    /// unless the type says otherwise.
    pub(crate) trait Reclaim: Pointable {
        fn reclaim(owned: Owned<Self>) {
            drop(owned);
        }
    }

    /// A value loaded from a slot under a guard: a version or the tombstone.
    pub(crate) struct Current<'g, T: ?Sized + Pointable>(Shared<'g, T>);

    impl<T: ?Sized + Pointable> Clone for Current<'_, T> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<T: ?Sized + Pointable> Copy for Current<'_, T> {}

    impl<'g, T: ?Sized + Pointable> Current<'g, T> {
        /// The version, or `None` for the tombstone.
        #[inline]
        pub(crate) fn get(self) -> Option<&'g T> {
            // SAFETY: the pointer is null or points to a version that was in the slot when it
            // was loaded under the guard `'g`. A version is freed only by `defer_destroy` after
            // a CAS removed it from the slot, and deferred destruction waits for every guard
            // pinned before that, `'g` included; so the reference is valid for `'g`.
            unsafe { self.0.as_ref() }
        }

        pub(crate) fn same(self, other: Current<'g, T>) -> bool {
            self.0 == other.0
        }
    }

    impl<T: ?Sized + Reclaim + Send + 'static> Slot<T> {
        pub(crate) fn new(v: Owned<T>) -> Self {
            Slot {
                ptr: Atomic::from(v),
            }
        }

        #[inline]
        pub(crate) fn load<'g>(&self, guard: &'g Guard) -> Current<'g, T> {
            Current(self.ptr.load(Ordering::Acquire, guard))
        }

        /// Swaps `cur` for `new` if the slot still holds `cur` (a CAS: it can fail), and
        /// retires `cur`. On failure, gives `new` back with what the slot holds now.
        pub(crate) fn compare_exchange<'g>(
            &self,
            cur: Current<'g, T>,
            new: Owned<T>,
            guard: &'g Guard,
        ) -> Result<(), (Owned<T>, Current<'g, T>)> {
            match self
                .ptr
                .compare_exchange(cur.0, new, Ordering::AcqRel, Ordering::Acquire, guard)
            {
                Ok(_) => {
                    // SAFETY: our CAS removed `cur` from the slot.
                    unsafe { retire(cur, guard) };
                    Ok(())
                }
                Err(e) => Err((e.new, Current(e.current))),
            }
        }

        /// Swaps `cur` for the tombstone if the slot still holds `cur` (a CAS: it can fail),
        /// and retires `cur`. On failure, what the slot holds now.
        pub(crate) fn compare_tombstone<'g>(
            &self,
            cur: Current<'g, T>,
            guard: &'g Guard,
        ) -> Result<(), Current<'g, T>> {
            match self.ptr.compare_exchange(
                cur.0,
                Shared::null(),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok(_) => {
                    // SAFETY: our CAS removed `cur` from the slot.
                    unsafe { retire(cur, guard) };
                    Ok(())
                }
                Err(e) => Err(Current(e.current)),
            }
        }

        /// Reads the slot's newest value with a read-modify-write (a CAS of `cur` for itself):
        /// unlike a load, it cannot return a value older than the latest in the slot's
        /// modification order. Part of the commit/cleanup handshake (see `DESIGN.md`).
        pub(crate) fn read_latest<'g>(
            &self,
            cur: Current<'g, T>,
            guard: &'g Guard,
        ) -> Current<'g, T> {
            match self.ptr.compare_exchange(
                cur.0,
                cur.0,
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok(_) => cur,
                Err(e) => Current(e.current),
            }
        }

        /// Takes the value out of a slot no other thread can reach (one that was never
        /// published): `None` for the tombstone.
        pub(crate) fn into_inner(self) -> Option<Owned<T>> {
            // SAFETY: `self` by value: no other thread can reach the slot, so the unprotected
            // guard is sound. The pointer is null or the slot's own (never retired); the swap
            // leaves null behind, so `Drop` frees nothing and ownership moves to the caller.
            unsafe {
                let p = self.ptr.swap(
                    Shared::null(),
                    Ordering::Relaxed,
                    crossbeam_epoch::unprotected(),
                );
                (!p.is_null()).then(|| p.into_owned())
            }
        }
    }

    /// Retires a version a CAS removed: freed once no guard pinned before can still see it.
    ///
    /// # Safety
    /// The caller's CAS has just removed `cur` from its slot, so no thread can load it any
    /// more and this is its only retirement.
    unsafe fn retire<T: ?Sized + Reclaim>(cur: Current<'_, T>, guard: &Guard) {
        if !cur.0.is_null() {
            let retired = cur.0;
            // SAFETY: by the contract, `cur` left the slot by our CAS and is retired once;
            // threads that loaded it before are pinned, and the deferred function runs only
            // after they unpin, so taking ownership back there is sound (it is what
            // `defer_destroy` does, with the type's `Reclaim` instead of a plain drop).
            unsafe { guard.defer_unchecked(move || T::reclaim(retired.into_owned())) };
        }
    }

    impl<T: ?Sized + Pointable> Drop for Slot<T> {
        fn drop(&mut self) {
            // SAFETY: `&mut self`: no other thread can reach the slot, so the unprotected guard
            // is sound. The pointer is null or the slot's own (never retired: only replaced
            // versions are), so it is freed exactly once, here.
            unsafe {
                let p = self
                    .ptr
                    .load(Ordering::Relaxed, crossbeam_epoch::unprotected());
                if !p.is_null() {
                    drop(p.into_owned());
                }
            }
        }
    }
}

#[cfg(memstore_loom)]
mod imp {
    //! Under loom: a loom `AtomicPtr`, and retired versions kept until the slot drops (loom
    //! has no epoch); loom's leak tracking (`loom::alloc::Track` inside each version in the
    //! models) checks that every version is freed.
    use super::Guard;
    use loom::sync::atomic::{AtomicPtr, Ordering};
    use std::marker::PhantomData;
    use std::ptr;

    pub(crate) struct Slot<T> {
        ptr: AtomicPtr<T>,
        // A plain std mutex: bookkeeping outside the model, never contended within a step.
        retired: std::sync::Mutex<Vec<Box<T>>>,
    }

    pub(crate) struct Current<'g, T>(*mut T, PhantomData<&'g Guard>);

    impl<T> Clone for Current<'_, T> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<T> Copy for Current<'_, T> {}

    impl<'g, T> Current<'g, T> {
        pub(crate) fn get(self) -> Option<&'g T> {
            // SAFETY: non-null pointers came from `Box::into_raw`; a replaced version moves to
            // `retired` and is freed only when the slot drops, which the borrow of the slot
            // behind `'g` outlives.
            unsafe { self.0.as_ref() }
        }

        pub(crate) fn same(self, other: Current<'g, T>) -> bool {
            self.0 == other.0
        }
    }

    impl<T> Slot<T> {
        pub(crate) fn new(v: Box<T>) -> Self {
            Slot {
                ptr: AtomicPtr::new(Box::into_raw(v)),
                retired: std::sync::Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn load<'g>(&self, _guard: &'g Guard) -> Current<'g, T> {
            Current(self.ptr.load(Ordering::Acquire), PhantomData)
        }

        pub(crate) fn compare_exchange<'g>(
            &self,
            cur: Current<'g, T>,
            new: Box<T>,
            _guard: &'g Guard,
        ) -> Result<(), (Box<T>, Current<'g, T>)> {
            let raw = Box::into_raw(new);
            match self
                .ptr
                .compare_exchange(cur.0, raw, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: our CAS removed `cur` from the slot.
                    unsafe { self.retire(cur) };
                    Ok(())
                }
                // SAFETY: `raw` came from `Box::into_raw` above and was never published.
                Err(actual) => Err((unsafe { Box::from_raw(raw) }, Current(actual, PhantomData))),
            }
        }

        pub(crate) fn compare_tombstone<'g>(
            &self,
            cur: Current<'g, T>,
            _guard: &'g Guard,
        ) -> Result<(), Current<'g, T>> {
            match self.ptr.compare_exchange(
                cur.0,
                ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: our CAS removed `cur` from the slot.
                    unsafe { self.retire(cur) };
                    Ok(())
                }
                Err(actual) => Err(Current(actual, PhantomData)),
            }
        }

        /// Keeps a version a CAS removed until the slot drops (loom has no epoch).
        ///
        /// # Safety
        /// The caller's CAS has just removed `cur` from this slot: nobody else owns it.
        unsafe fn retire(&self, cur: Current<'_, T>) {
            if !cur.0.is_null() {
                // SAFETY: by the contract we own it now; it came from `Box::into_raw`.
                let b = unsafe { Box::from_raw(cur.0) };
                if crate::seeded_bugs::seeded_bug!(ReplaceLeaks) {
                    std::mem::forget(b); // BUG (loom only): the winner never retires it.
                } else {
                    self.retired.lock().unwrap().push(b);
                }
            }
        }

        pub(crate) fn read_latest<'g>(
            &self,
            cur: Current<'g, T>,
            _guard: &'g Guard,
        ) -> Current<'g, T> {
            match self
                .ptr
                .compare_exchange(cur.0, cur.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => cur,
                Err(actual) => Current(actual, PhantomData),
            }
        }
    }

    impl<T> Slot<T> {
        pub(crate) fn into_inner(self) -> Option<Box<T>> {
            let mut slot = self;
            let p = slot.ptr.with_mut(|p| std::mem::replace(p, ptr::null_mut()));
            // SAFETY: by value: exclusive; the slot owned `p`, and null is left for `Drop`.
            (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
        }
    }

    impl<T> Drop for Slot<T> {
        fn drop(&mut self) {
            let p = self.ptr.with_mut(|p| *p);
            if !p.is_null() {
                // SAFETY: exclusive access; the slot owns its current pointer.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(not(memstore_loom))]
pub(crate) use imp::Reclaim;
pub(crate) use imp::{Current, Slot};

#[cfg(all(test, not(memstore_loom)))]
mod tests {
    use super::{Reclaim, Slot};
    use crossbeam_epoch::Owned;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RECLAIMED: AtomicUsize = AtomicUsize::new(0);

    /// A value that counts how often `Reclaim` hands it back.
    struct Tracked(usize);

    impl Reclaim for Tracked {
        fn reclaim(owned: Owned<Self>) {
            RECLAIMED.fetch_add(owned.0, Ordering::Relaxed);
        }
    }

    #[test]
    fn each_replaced_value_reaches_reclaim_once_after_the_epoch_releases_it() {
        let slot = Slot::new(Owned::new(Tracked(1)));
        {
            let guard = crossbeam_epoch::pin();
            let held = slot.load(&guard);
            for _ in 0..100 {
                let cur = slot.load(&guard);
                assert!(slot
                    .compare_exchange(cur, Owned::new(Tracked(1)), &guard)
                    .is_ok());
            }
            let cur = slot.load(&guard);
            assert!(slot.compare_tombstone(cur, &guard).is_ok());
            // Pinned: nothing retired under this guard is released yet.
            crossbeam_epoch::pin().flush();
            assert_eq!(
                held.get().map(|t| t.0),
                Some(1),
                "still readable while pinned"
            );
            assert_eq!(RECLAIMED.load(Ordering::Relaxed), 0);
        }
        // Unpinned: each flush may advance the epoch (two advances release them all); a
        // test pinned elsewhere in this process could hold it back for a while.
        for _ in 0..10_000 {
            if RECLAIMED.load(Ordering::Relaxed) == 101 {
                break;
            }
            crossbeam_epoch::pin().flush();
        }
        // The first value and the 100 that replaced it, each handed back once.
        assert_eq!(RECLAIMED.load(Ordering::Relaxed), 101);
        drop(slot); // holds the tombstone: frees nothing
    }
}
