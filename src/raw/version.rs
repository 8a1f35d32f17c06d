//! A session's committed value: its deadline and its data, in one allocation.
//!
//! A version is what a node's `Slot` points to. Data up to
//! [`FIND_COPY_LIMIT`] bytes (a typical session) is stored inline, right after a
//! 16-byte header: a read goes node -> version and finds the data there, one dependent cache
//! miss less than a version holding a `Bytes` that points elsewhere, and a commit makes one
//! allocation, not two. Larger data stays in the caller's `Bytes` (kept in the tail), so
//! [`find`](crate::MemStore::find) shares it with a reference count instead of copying it.
//!
//! Measured (benches/HISTORY.md, "Inline versions"): the reason this module has `unsafe` code.
//! Under loom the version is a plain `Box`ed struct with the same interface: the models check
//! the protocol, not the layout. Miri runs over this module through its unit test
//! (aliasing checks included) and the contract tests (`.ci/miri`).

use bytes::Bytes;

/// Data up to this many bytes is held inside its version (one allocation with the deadline),
/// and [`MemStore::find`](crate::MemStore::find) returns a fresh copy of it; larger data stays
/// in its own `Bytes`, which `find` shares by reference count. On a hot session read by
/// several threads, a small copy is faster than the shared counter's cache-line traffic.
pub const FIND_COPY_LIMIT: usize = 1024;

#[cfg(not(memstore_loom))]
mod imp {
    use super::{Bytes, FIND_COPY_LIMIT};
    use crate::raw::paced;
    use crate::raw::slot::Reclaim;
    use crossbeam_epoch::Pointable;
    use std::alloc::{self, Layout};
    use std::cell::UnsafeCell;
    use std::mem::{self, size_of};
    use std::ptr;

    /// The owned form of a version: a thin pointer, as the slot's atomic needs.
    pub(crate) type Owned = crossbeam_epoch::Owned<Version>;

    /// `meta`'s top bit: the tail holds a `Bytes`, not the data itself.
    const SHARED: usize = 1 << (usize::BITS - 1);

    /// One committed value of a session: a dynamically sized type, header then tail.
    ///
    /// Invariants kept here (each `unsafe` block relies on them):
    /// - `meta & !SHARED == tail.len()`, so the thin pointer the slot stores rebuilds the
    ///   reference (`fat`), and the allocation's layout is `layout(tail.len())`.
    /// - If `meta & SHARED`, the tail is exactly one initialised, 8-byte aligned `Bytes`
    ///   (the header is 16 bytes and the allocation 8-aligned), owned by the version and
    ///   dropped with it; otherwise the tail is the data, fully initialised.
    /// - Nothing mutates a version after `init` but the tail's `Bytes` itself, through its
    ///   own atomics (cloning a `Bytes` may swap its internal pointer, "promotion"): hence
    ///   the tail is `UnsafeCell` memory, and inline data in it is never written.
    #[repr(C)]
    pub(crate) struct Version {
        meta: usize,
        /// Nanoseconds since the Unix epoch.
        pub(crate) deadline: u64,
        tail: [UnsafeCell<u8>],
    }

    // SAFETY: shared access never writes inline data (type invariant), and a shared `Bytes`
    // in the tail is only used through `&Bytes`, which is `Sync`.
    unsafe impl Sync for Version {}

    /// The header alone: `Version`'s sized prefix (same `repr(C)` fields, same offsets).
    #[repr(C)]
    struct Head {
        meta: usize,
        deadline: u64,
    }

    /// The layout of a version with an `n`-byte tail.
    fn layout(n: usize) -> Layout {
        let (l, _) = Layout::new::<Head>()
            .extend(Layout::array::<u8>(n).expect("tail size"))
            .expect("version size");
        l.pad_to_align()
    }

    /// The (fat) version pointer behind a thin one.
    ///
    /// # Safety
    /// `ptr` came from [`Pointable::init`] for `Version` and is not yet dropped.
    unsafe fn fat(ptr: usize) -> *mut Version {
        let p = ptr as *mut u8;
        // SAFETY (caller's): `p` points to an initialised header; `meta` is its first field.
        let n = unsafe { p.cast::<usize>().read() } & !SHARED;
        ptr::slice_from_raw_parts_mut(p, n) as *mut Version
    }

    /// Allocates a version with an `n`-byte tail and writes its header; the caller fills the
    /// tail (at offset 16, 8-aligned) before anyone reads it.
    fn alloc_head(n: usize, shared: bool, deadline: u64) -> *mut u8 {
        let layout = layout(n);
        // SAFETY: the layout's size is at least the 16-byte header, never zero.
        let p = unsafe { alloc::alloc(layout) };
        if p.is_null() {
            alloc::handle_alloc_error(layout);
        }
        let meta = n | if shared { SHARED } else { 0 };
        // SAFETY: `p` is a fresh allocation of `layout`: the header fits at its start, aligned.
        unsafe { p.cast::<Head>().write(Head { meta, deadline }) };
        p
    }

    /// A version holding a copy of `data` inline; returns its thin pointer.
    fn build_inline(data: &[u8], deadline: u64) -> usize {
        let p = alloc_head(data.len(), false, deadline);
        // SAFETY: the tail is `data.len()` bytes at offset 16 of the fresh allocation.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p.add(size_of::<Head>()), data.len()) };
        p as usize
    }

    /// `data` in a buffer of exactly its length: a `Bytes` that shares its buffer (a slice of
    /// a larger one, or one with spare capacity) would keep memory alive that the bounds
    /// never count, so it is copied; a uniquely owned, exact buffer is kept as is.
    fn owned_exactly(data: Bytes) -> Bytes {
        match data.try_into_mut() {
            Ok(m) if m.capacity() == m.len() => m.freeze(),
            Ok(m) => Bytes::copy_from_slice(&m),
            Err(shared) => Bytes::copy_from_slice(&shared),
        }
    }

    /// A version whose tail holds `data` itself (larger data); returns its thin pointer.
    fn build_shared(data: Bytes, deadline: u64) -> usize {
        let p = alloc_head(size_of::<Bytes>(), true, deadline);
        // SAFETY: the tail is `size_of::<Bytes>()` bytes at offset 16 (8-aligned, as `Bytes`
        // needs) of the fresh allocation.
        unsafe { p.add(size_of::<Head>()).cast::<Bytes>().write(data) };
        p as usize
    }

    impl Pointable for Version {
        const ALIGN: usize = mem::align_of::<Head>();
        type Init = (Bytes, u64);

        unsafe fn init((data, deadline): Self::Init) -> usize {
            if data.len() > FIND_COPY_LIMIT {
                build_shared(owned_exactly(data), deadline)
            } else {
                build_inline(&data, deadline)
            }
        }

        unsafe fn deref<'a>(ptr: usize) -> &'a Self {
            // SAFETY (caller's, per `Pointable`): `ptr` came from `init` and is live; versions
            // are never mutated after `init`, so a shared reference is sound.
            unsafe { &*fat(ptr) }
        }

        unsafe fn deref_mut<'a>(ptr: usize) -> &'a mut Self {
            // SAFETY (caller's): as `deref`, and no other reference exists meanwhile.
            unsafe { &mut *fat(ptr) }
        }

        unsafe fn drop(ptr: usize) {
            // SAFETY (caller's): `ptr` came from `init`, is live and no longer reachable by any
            // other thread. The tail's `Bytes`, if any, is dropped once, then the allocation
            // is freed with the layout `init` used (`meta` gives back the same `n`).
            unsafe {
                let p = ptr as *mut u8;
                let meta = p.cast::<usize>().read();
                if meta & SHARED != 0 {
                    ptr::drop_in_place(p.add(size_of::<Head>()).cast::<Bytes>());
                }
                alloc::dealloc(p, layout(meta & !SHARED));
            }
        }
    }

    thread_local! {
        /// Released versions this thread keeps for its next allocations to free (`paced.rs`).
        static KEPT: paced::Kept<Owned> = const { paced::Kept::new() };
    }

    impl Reclaim for Version {
        /// Paced (`paced.rs`): an inline version is kept (counted by its allocation's size) for
        /// this thread's next allocation to free; one holding a shared `Bytes` is freed at once.
        fn reclaim(owned: Owned) {
            let size = owned.is_inline().then(|| layout(owned.data().len()).size());
            paced::release(&KEPT, owned, size);
        }
    }

    impl Version {
        /// A version holding `data` until `deadline`.
        #[inline]
        pub(crate) fn new(data: Bytes, deadline: u64) -> Owned {
            paced::before_alloc(&KEPT);
            Owned::init((data, deadline))
        }

        /// Whether the data is held inline (not a shared `Bytes`).
        #[inline]
        fn is_inline(&self) -> bool {
            self.shared().is_none()
        }

        /// A copy of this version with another deadline (for `touch`): one allocation, the
        /// data copied (inline) or shared (larger).
        pub(crate) fn retimed(&self, deadline: u64) -> Owned {
            paced::before_alloc(&KEPT);
            let p = match self.shared() {
                Some(b) => build_shared(b.clone(), deadline),
                None => build_inline(self.data(), deadline),
            };
            // SAFETY: `p` came from `build_*`, which lay a version out as `Pointable::init`
            // does (the same functions), so `Pointable::deref`/`drop` apply to it.
            unsafe { <Owned as crossbeam_epoch::Pointer<Version>>::from_usize(p) }
        }

        #[inline]
        fn shared(&self) -> Option<&Bytes> {
            if self.meta & SHARED != 0 {
                // SAFETY: with `SHARED` set the tail is one initialised, aligned `Bytes`
                // (type invariant), in `UnsafeCell` memory as its atomics need; the reference
                // borrows from `self`.
                Some(unsafe { &*self.tail.as_ptr().cast::<Bytes>() })
            } else {
                None
            }
        }

        /// The data, borrowed.
        #[inline]
        pub(crate) fn data(&self) -> &[u8] {
            match self.shared() {
                Some(b) => b,
                // SAFETY: without `SHARED` the tail is the data: initialised, and never written
                // after `init` (type invariant), so reading it as `&[u8]` for `self`'s
                // lifetime is sound.
                None => unsafe {
                    std::slice::from_raw_parts(self.tail.as_ptr().cast::<u8>(), self.tail.len())
                },
            }
        }

        /// The data as an owned `Bytes`: a copy of inline data (no write to memory that
        /// other readers share), a reference count on larger data.
        #[inline]
        pub(crate) fn to_bytes(&self) -> Bytes {
            match self.shared() {
                Some(b) => b.clone(),
                None => Bytes::copy_from_slice(self.data()),
            }
        }
    }
}

#[cfg(memstore_loom)]
mod imp {
    use super::{Bytes, FIND_COPY_LIMIT};

    /// Under loom: a boxed version.
    pub(crate) type Owned = Box<Version>;

    /// One committed value of a session (loom build: a plain struct; loom's leak tracking
    /// checks every version is freed).
    pub(crate) struct Version {
        data: Bytes,
        /// Nanoseconds since the Unix epoch.
        pub(crate) deadline: u64,
        _track: loom::alloc::Track<()>,
    }

    impl Version {
        pub(crate) fn new(data: Bytes, deadline: u64) -> Owned {
            Box::new(Version {
                data,
                deadline,
                _track: loom::alloc::Track::new(()),
            })
        }

        pub(crate) fn data(&self) -> &[u8] {
            &self.data
        }

        pub(crate) fn retimed(&self, deadline: u64) -> Owned {
            Version::new(self.data.clone(), deadline)
        }

        pub(crate) fn to_bytes(&self) -> Bytes {
            if self.data.len() <= FIND_COPY_LIMIT {
                Bytes::copy_from_slice(&self.data)
            } else {
                self.data.clone()
            }
        }
    }
}

pub(crate) use imp::{Owned, Version};

#[cfg(all(test, not(memstore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn inline_and_shared_versions_hold_their_data() {
        for len in [
            0,
            1,
            7,
            8,
            15,
            16,
            17,
            128,
            FIND_COPY_LIMIT,
            FIND_COPY_LIMIT + 1,
            5000,
        ] {
            let owned: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let data = Bytes::copy_from_slice(&owned);
            // A uniquely owned, exact buffer is kept as is (a shared one would be copied).
            let v = Version::new(Bytes::from(owned), 42 + len as u64);
            assert_eq!(v.deadline, 42 + len as u64);
            assert_eq!(v.data(), &data[..]);
            let out = v.to_bytes();
            assert_eq!(out, data);
            // Larger data is shared, not copied; inline data is a fresh copy.
            if len > 0 {
                assert_eq!(
                    out.as_ptr() == v.data().as_ptr(),
                    len > FIND_COPY_LIMIT,
                    "len {len}"
                );
            }
            let w = v.retimed(7);
            assert_eq!((w.deadline, w.data()), (7, &data[..]));
            drop(v);
            assert_eq!(out, data, "a copy outlives its version");
            assert_eq!(w.data(), &data[..], "a retimed copy outlives its source");
        }
    }
}
