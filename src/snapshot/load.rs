//! Loading: opening a snapshot file safely, and putting its validated blocks into the store
//! (insert-if-absent, never evicting) on the reading thread or on up to [`MAX_INSERTERS`]
//! inserter threads.

use super::decode::{Batch, Loader, Rec};
use super::error::{LoadReport, SnapshotError, SnapshotErrorKind};
use crate::raw::{Store, Unfiled};
use bytes::Bytes;
#[cfg(not(unix))]
use std::fs;
use std::fs::File;
#[cfg(unix)]
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Opens a snapshot for reading: never through a symlink at the last component, and only a
/// regular file.
pub(crate) fn open_snapshot(path: &Path) -> Result<File, SnapshotError> {
    let file = open_nofollow(path)?;
    let meta = file.metadata().map_err(|e| SnapshotError::io(e, 0))?;
    if !meta.is_file() {
        return Err(SnapshotError::new(SnapshotErrorKind::NotAFile, 0));
    }
    Ok(file)
}

#[cfg(unix)]
fn open_nofollow(path: &Path) -> Result<File, SnapshotError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                SnapshotError::new(SnapshotErrorKind::Symlink, 0)
            } else {
                SnapshotError::io(e, 0)
            }
        })
}

#[cfg(not(unix))]
fn open_nofollow(path: &Path) -> Result<File, SnapshotError> {
    let meta = fs::symlink_metadata(path).map_err(|e| SnapshotError::io(e, 0))?;
    if meta.file_type().is_symlink() {
        return Err(SnapshotError::new(SnapshotErrorKind::Symlink, 0));
    }
    File::open(path).map_err(|e| SnapshotError::io(e, 0))
}

/// What inserting records did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    loaded: u64,
    expired: u64,
    present: u64,
    refused: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.loaded += o.loaded;
        self.expired += o.expired;
        self.present += o.present;
        self.refused += o.refused;
    }
}

/// Inserts validated blocks into the store (on the reading thread or on inserter threads).
pub(super) struct Inserter<'s> {
    store: &'s Store,
    /// Whether a full store has been swept once for room.
    swept: AtomicBool,
}

/// Inserter threads a load uses at most (besides the thread that reads and checks).
const MAX_INSERTERS: usize = 4;

/// Records an inserter takes at once and inserts in the store's key order. A snapshot's
/// records come in the order of the store that saved it, whose hash key differs, so taken
/// one by one each insert would descend a token skiplist along a cold path; sorted, each
/// insert follows its neighbour's path, which is still in cache. The window's expiry
/// entries are then filed in each shard's deadline order, for the same reason. More records
/// at once put neighbours closer together: at 10M sessions, windows of 512k records load
/// about 1.2x as fast as windows of 128k (an unbounded store; BENCHMARKS.md).
const WINDOW: usize = 1 << 19;

/// A bounded store's load files its entries every this many sessions rather than once a
/// window: eviction can only take filed sessions, so a full store always has all but these
/// to evict when a commit races the load.
const BOUNDED_UNFILED: usize = 4096;

/// Block bytes a window holds at most, whatever its record count: a load holds at most
/// `inserters + 2` windows at once (one filling, one queued, one inserting per inserter).
const WINDOW_BYTES: usize = 64 << 20;

/// Validated blocks waiting to be inserted: [`WINDOW`] records or [`WINDOW_BYTES`], or the
/// last ones.
type Window = Vec<Batch>;

/// A record as the insert needs it, gathered in file order and then sorted by `hash`, so
/// that the insert reads no `Rec` out of order (a cache and TLB miss each: a third of a
/// load's inserting time at 1M sessions when it did).
struct Item<'w> {
    hash: u64,
    expiry: u64,
    token: &'w str,
    data: (usize, usize),
    block: &'w Bytes,
}

impl Inserter<'_> {
    /// Inserts a window's records in the store's key order (a file never holds a token
    /// twice: the reader refuses a duplicate, so ties in the hash are distinct tokens, in any
    /// order). Each token is checked as UTF-8 once here, for its hash and its insert.
    pub(super) fn insert(&self, window: &[Batch], c: &mut Counts) {
        let mut order: Vec<Item<'_>> =
            Vec::with_capacity(window.iter().map(|b| b.recs.len()).sum());
        for batch in window {
            for rec in &batch.recs {
                let token = token_of(batch, rec);
                order.push(Item {
                    hash: self.store.hash(token),
                    expiry: rec.expiry,
                    token,
                    data: rec.data,
                    block: &batch.block,
                });
            }
        }
        order.sort_unstable_by_key(|o| o.hash);
        let mut filing = Filing {
            store: self.store,
            unfiled: Vec::with_capacity(order.len()),
        };
        let bounded = self.store.bounds.is_some();
        for item in &order {
            self.insert_one(item, &mut filing.unfiled, c);
            if bounded && filing.unfiled.len() >= BOUNDED_UNFILED {
                self.store.file_unfiled(&mut filing.unfiled);
            }
        }
    }

    /// Inserts one record.
    fn insert_one(&self, item: &Item<'_>, unfiled: &mut Unfiled, c: &mut Counts) {
        let inner = self.store;
        let now = inner.clock.now_nanos();
        if item.expiry <= now {
            c.expired += 1;
            return;
        }
        let (start, end) = item.data;
        let size = item.token.len() + (end - start);
        if !self.fits(size, now) {
            c.refused += 1;
            return;
        }
        // Small data is copied into the version; larger data would keep a slice of the
        // whole block alive, so it gets a buffer of its own.
        let data = if end - start > crate::FIND_COPY_LIMIT {
            Bytes::copy_from_slice(&item.block[start..end])
        } else {
            item.block.slice(start..end)
        };
        match self
            .store
            .load_new(item.hash, item.token, data, item.expiry, unfiled)
        {
            Ok(true) => c.loaded += 1,
            Ok(false) => c.present += 1,
            // The bounds (validated input cannot fail otherwise).
            Err(_) => c.refused += 1,
        }
    }

    /// Whether a session of `size` bytes fits the store's bounds without evicting; the first
    /// time it does not, reclaims expired sessions once and checks again.
    fn fits(&self, size: usize, now: u64) -> bool {
        let inner = self.store;
        if inner.fits_fresh(size) {
            return true;
        }
        if !self.swept.swap(true, Ordering::Relaxed) {
            inner.sweep(now);
            return inner.fits_fresh(size);
        }
        false
    }
}

/// A window's fresh sessions, linked and not yet in their expiry indexes: filed together
/// when the window is done (or if its insert unwinds, so none is left unreclaimable).
struct Filing<'s> {
    store: &'s Store,
    unfiled: Unfiled,
}

impl Drop for Filing<'_> {
    fn drop(&mut self) {
        self.store.file_unfiled(&mut self.unfiled);
    }
}

/// A record's token (checked to be UTF-8 when its block was validated).
fn token_of<'b>(batch: &'b Batch, rec: &Rec) -> &'b str {
    std::str::from_utf8(&batch.block[rec.token.0..rec.token.1]).unwrap_or_default()
}

/// Loads a snapshot from `r` into `store`.
///
/// This thread reads and validates; an unbounded store gets the records inserted by up to
/// [`MAX_INSERTERS`] threads (the store takes concurrent writers). A bounded store gets one
/// inserter, this thread, so that the load's own inserts never race its bound checks.
pub(crate) fn load(store: &Store, r: &mut dyn Read) -> Result<LoadReport, SnapshotError> {
    let inner = store;
    // Under loom, one inserter too: the model's threads are loom's, a load's would not be.
    let threads = if inner.bounds.is_some() || cfg!(memstore_loom) {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_INSERTERS)
    };
    let ins = Inserter {
        store,
        swept: AtomicBool::new(false),
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Window>(1);
    let rx = Mutex::new(rx);
    let mut tx = Some(tx);
    let mut l = Loader::new(inner.max_token_len, inner.max_data_len);
    let (res, counts) = std::thread::scope(|s| {
        let mut workers = Vec::new();
        for _ in 0..if threads > 1 { threads } else { 0 } {
            let (ins, rx) = (&ins, &rx);
            let spawned = std::thread::Builder::new()
                .name("memstore-load".into())
                .spawn_scoped(s, move || {
                    let mut c = Counts::default();
                    loop {
                        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            Ok(window) => ins.insert(&window, &mut c),
                            Err(_) => return c, // the reader is done
                        }
                    }
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break, // fewer threads, or none: the reader inserts
            }
        }
        if workers.is_empty() {
            tx = None;
        }
        // What inserting on this thread did.
        let mut counts = Counts::default();
        let mut window = Window::new();
        let mut held = (0, 0); // records, block bytes
        let hand_over = |window: Window, counts: &mut Counts| match &tx {
            // A send fails only if every inserter has panicked: the join re-raises it.
            Some(tx) => drop(tx.send(window)),
            None => ins.insert(&window, counts),
        };
        let res = l.header(r).and_then(|()| {
            l.blocks(r, |batch| {
                held.0 += batch.recs.len();
                held.1 += batch.block.len();
                window.push(batch);
                if held.0 >= WINDOW || held.1 >= WINDOW_BYTES {
                    held = (0, 0);
                    hand_over(std::mem::take(&mut window), &mut counts);
                }
            })
        });
        // The blocks validated before the end, or before damage, are loaded either way.
        hand_over(window, &mut counts);
        drop(tx); // the inserters drain what was sent, then stop
        for w in workers {
            match w.join() {
                Ok(c) => counts.add(c),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (res, counts)
    });
    let with_counts = |mut report: LoadReport| {
        report.loaded = counts.loaded;
        report.expired = counts.expired;
        report.present = counts.present;
        report.refused = counts.refused;
        report
    };
    match res {
        Ok(()) => Ok(with_counts(l.report)),
        Err(mut e) => {
            // Count what was lost: from the bad item to the end of the input.
            let rest = io::copy(r, &mut io::sink()).unwrap_or(0);
            e.report = with_counts(l.report);
            e.report.lost_bytes = (l.pos + rest).saturating_sub(l.item);
            Err(e)
        }
    }
}
