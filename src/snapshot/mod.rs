//! Snapshots: sessions that survive a restart.
//!
//! [`MemStore::save`] writes every live session (token, expiry, data) to a file while the
//! store keeps serving; [`MemStore::load`] puts a file's sessions back, into a store that may
//! already be serving. [`Builder::snapshot_every`] saves one periodically, so that a crash
//! loses at most one interval.
//!
//! ```
//! use memstore::MemStore;
//! use std::time::{Duration, SystemTime};
//!
//! let dir = std::env::temp_dir().join(format!("memstore-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("sessions.snap");
//!
//! let store = MemStore::new();
//! store.commit("token", "data", SystemTime::now() + Duration::from_secs(60))?;
//! let saved = store.save(&path)?; // atomic: temporary file, fsync, rename, fsync of the dir
//! assert_eq!(saved.records, 1);
//!
//! let restarted = MemStore::new();
//! let report = restarted.load(&path)?;
//! assert_eq!(report.loaded, 1);
//! assert_eq!(restarted.find("token").as_deref(), Some(&b"data"[..]));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Consistency
//! A save takes no lock and pauses no reader or writer: it walks each shard as
//! [`MemStore::iter`] does, with the time read once when the save starts. Each record is one
//! committed version of its session (its token, expiry and data belong together). A session
//! committed, extended or deleted while the save runs may be in the file with its old
//! version, its new one, or not at all; every session live and unchanged throughout is in
//! it. No token appears twice. While a shard is walked its epoch is pinned, so memory that
//! writers retire meanwhile is freed only after the shard is done; the encoded blocks go to
//! the writer in chunks of about 1 MiB during the walk, so a slow writer (a network socket)
//! prolongs the pin: save to a file or a buffer.
//!
//! A load is insert-if-absent ([`MemStore::commit_new`]): a live session already in the
//! store is newer than the file and wins (`present` in the [`LoadReport`]). The calling
//! thread reads and checks the file; an unbounded store gets the records inserted by up to
//! four threads (the available parallelism), a bounded one by the calling thread alone.
//! Load before serving (as `examples/server.rs` does): a session deleted while a load runs (a
//! logout) can come back from the file, since insert-if-absent cannot tell a deleted session
//! from one that was never there. Sessions whose
//! expiry has passed by the store's clock are skipped (`expired`). A bounded store
//! ([`Builder::max_sessions`], [`Builder::max_bytes`]) is never evicted from to make room
//! for a restored session, whatever its [`WhenFull`](crate::WhenFull) policy: records that
//! do not fit are refused (`refused`), after one cleanup pass has reclaimed expired
//! sessions. (A commit racing the load can still take the store over between the load's
//! check and its insert; then the store's own policy applies, as for any commit.)
//!
//! # Bad input
//! Any damage is a [`SnapshotError`] that names its [`kind`](SnapshotError::kind) and the byte
//! [`offset`](SnapshotError::offset) where it was found, never a panic. Records are validated
//! a block at a time before any of the block's sessions is inserted: a block that fails its
//! checksum, or that holds one bad record (a token over the store's
//! [`max_token_len`](crate::Builder::max_token_len), data over its
//! [`max_data_len`](crate::Builder::max_data_len), an empty or non-UTF-8 token, an expiry not
//! after the snapshot's creation time, a token seen before in the file) is not loaded at all,
//! and the load stops there. Sessions from the blocks before it stay loaded, and the error's
//! [`report`](SnapshotError::report) counts them and the bytes lost (from the bad block to the
//! end of the input).
//!
//! # Security
//! Session tokens are bearer credentials: anyone who reads a snapshot can log in as every
//! user in it until their sessions expire. Keep snapshot files like a private key.
//! - [`MemStore::save`] creates its temporary file with `O_CREAT | O_EXCL` (never following
//!   or reusing an existing file) and mode `0600` on Unix (less if the umask says so), in the
//!   target's directory, then renames it over the target, so the file never exists with wider
//!   permissions or partly written under the target's name. A symlink at the target is
//!   replaced, not followed.
//! - [`MemStore::load`] opens the path with `O_NOFOLLOW` on Unix: a symlink as the path's
//!   last component is refused ([`SnapshotErrorKind::Symlink`]); symlinks among the
//!   directories above it are the caller's own and are followed. It opens with `O_NONBLOCK`
//!   and refuses anything but a regular file ([`SnapshotErrorKind::NotAFile`]), so a FIFO or
//!   device at the path cannot hang or feed it. On other platforms the symlink check is a
//!   `symlink_metadata` before opening (not atomic with the open).
//! - The file holds no secret beyond the sessions themselves, and is not encrypted:
//!   encrypt the disk or the file if it leaves the machine.
//!
//! # Format (version 1)
//! All integers are little-endian. CRC-32 is the IEEE polynomial (zlib's `crc32`, the
//! `crc32fast` crate).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic: the bytes `MEMSNAP` then `0x00` |
//! | 8 | 4 | format version, `u32` (1) |
//! | 12 | 8 | creation time, `u64` nanoseconds since the Unix epoch, by the store's clock |
//! | 20 | 4 | CRC-32 of bytes 0..20 |
//!
//! Then zero or more blocks, each:
//!
//! | size | field |
//! |---|---|
//! | 4 | payload length `L`, `u32`, at least 1 |
//! | 4 | record count `N`, `u32`, at least 1 |
//! | 4 | CRC-32 of the length and count (the 8 bytes before) |
//! | `L` | `N` records, back to back, filling the payload exactly |
//! | 4 | CRC-32 of the payload |
//!
//! The length has a checksum of its own so that a damaged length is caught before it
//! decides which bytes are read as the payload (and, say, session data as a block).
//!
//! Each record:
//!
//! | size | field |
//! |---|---|
//! | 4 | token length `T`, `u32`, at least 1 |
//! | 8 | expiry, `u64` nanoseconds since the Unix epoch; after the creation time |
//! | 4 | data length `D`, `u32` |
//! | `T` | the token, UTF-8 |
//! | `D` | the data |
//!
//! Then the end marker: a `u32` 0 (where a block's length would be), the total number of
//! records in the file as a `u64`, and a CRC-32 of those 12 bytes. Nothing follows it.
//!
//! A writer closes a block once its payload would grow past 64 KiB, unless it is empty (one
//! larger record gets a block of its own), so a block's payload is at most
//! `max(64 KiB, 16 + T + D)` bytes; a reader refuses a longer block before reading it. No
//! token appears twice in a file.
//!
//! Overhead: 8 bytes per record beyond its token, data and expiry, and 16 bytes per block:
//! with 43-byte tokens and 128-byte data, a snapshot is about 1.05x what it holds (figures in
//! BENCHMARKS.md).

mod periodic;

pub(crate) use periodic::Periodic;
pub use periodic::SnapshotStatus;

use crate::clock;
use crate::raw::Store;
use crate::sync;
use crate::{Error, MemStore};
use bytes::Bytes;
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// The first 8 bytes of every snapshot.
const MAGIC: [u8; 8] = *b"MEMSNAP\0";
/// The format version this crate writes and reads.
const FORMAT_VERSION: u32 = 1;
/// Header bytes: magic, version, creation time, checksum.
const HEADER_LEN: usize = 24;
/// A block's payload grows to about this many bytes before the writer closes it.
const BLOCK_TARGET: usize = 64 * 1024;
/// A block's fixed part: payload length, record count, their checksum.
const BLOCK_HEAD: usize = 12;
/// A record's fixed part: token length, expiry, data length.
const RECORD_HEAD: usize = 16;
/// Encoded bytes the writer gathers before writing them out.
const CHUNK: usize = 1 << 20;

/// What a save wrote, from [`MemStore::save`] and [`MemStore::save_to`].
///
/// ```
/// let store = memstore::MemStore::new();
/// let mut buf = Vec::new();
/// let report = store.save_to(&mut buf)?;
/// assert_eq!((report.records, report.bytes), (0, buf.len() as u64));
/// # Ok::<(), memstore::SnapshotError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaveReport {
    /// Sessions written.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The snapshot's creation time (the store's clock when the save started).
    pub created: SystemTime,
}

/// What a load did, from [`MemStore::load`] and [`MemStore::load_from`]; a failed load's
/// [`SnapshotError::report`] says what it did before it stopped.
///
/// ```
/// use memstore::MemStore;
/// use std::time::{Duration, SystemTime};
///
/// let old = MemStore::new();
/// let later = SystemTime::now() + Duration::from_secs(60);
/// old.commit("a", "1", later)?;
/// old.commit("b", "2", later)?;
/// let mut snapshot = Vec::new();
/// old.save_to(&mut snapshot)?;
///
/// let new = MemStore::new();
/// new.commit("a", "newer", later)?;
/// let report = new.load_from(&snapshot[..])?;
/// assert_eq!((report.loaded, report.present, report.expired, report.refused), (1, 1, 0, 0));
/// assert_eq!(new.find("a").as_deref(), Some(&b"newer"[..])); // the store's session wins
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Sessions inserted into the store.
    pub loaded: u64,
    /// Sessions skipped because their expiry had passed by the store's clock.
    pub expired: u64,
    /// Sessions skipped because a live session held their token (it is newer, and kept).
    pub present: u64,
    /// Sessions refused because the store was at one of its bounds.
    pub refused: u64,
    /// Bytes of input not loaded because of the error that stopped the load: from the start
    /// of the bad block (or header) to the end of the input. 0 for a load that succeeded.
    pub lost_bytes: u64,
    /// The snapshot's creation time, once its header has been read.
    pub created: Option<SystemTime>,
}

/// A failed save or load: what went wrong, the byte offset where, and (for a load) what was
/// loaded before.
///
/// ```
/// use memstore::{MemStore, SnapshotErrorKind};
///
/// let store = MemStore::new();
/// let err = store.load_from(&b"not a snapshot at all"[..]).unwrap_err();
/// assert!(matches!(err.kind(), SnapshotErrorKind::BadMagic));
/// assert_eq!(err.offset(), 0);
/// assert_eq!(err.report().loaded, 0);
/// ```
#[derive(Debug)]
pub struct SnapshotError {
    kind: SnapshotErrorKind,
    offset: u64,
    report: LoadReport,
}

/// Why a snapshot could not be saved or loaded: [`SnapshotError::kind`].
///
/// ```
/// use memstore::{MemStore, SnapshotErrorKind};
///
/// let err = MemStore::new().load_from(&b""[..]).unwrap_err();
/// assert!(matches!(err.kind(), SnapshotErrorKind::Empty));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotErrorKind {
    /// Reading or writing failed (a missing file is [`io::ErrorKind::NotFound`]).
    Io(io::Error),
    /// The path's last component is a symbolic link, which a load does not follow.
    Symlink,
    /// The path is a directory, a FIFO, a device: anything but a regular file.
    NotAFile,
    /// The input is empty.
    Empty,
    /// The input ends inside the header, a block or the end marker, or has no end marker.
    Truncated,
    /// The input does not start with the snapshot magic.
    BadMagic,
    /// The format version is not one this crate reads (a newer crate wrote it).
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// The header, a block or the end marker fails its checksum.
    Checksum,
    /// A block's length is over what any valid block for this store can hold (a damaged
    /// length, or a record over the store's limits).
    BlockTooLarge {
        /// The block's payload length.
        len: u64,
        /// The longest payload this store reads.
        max: u64,
    },
    /// A block's records do not fill its payload exactly or do not match its count.
    Malformed,
    /// A record the store cannot hold: an empty token, a token over
    /// [`Builder::max_token_len`], data over [`Builder::max_data_len`] (the store's own
    /// [`Error`]); on save, a record too large for the format (over 4 GiB).
    Record(Error),
    /// A token that is not UTF-8.
    InvalidToken,
    /// A record's expiry is not after the snapshot's creation time (every saved session was
    /// live when the save started).
    ExpiryOutOfRange {
        /// The record's expiry, nanoseconds since the Unix epoch.
        expiry: u64,
    },
    /// A token that appeared earlier in the file.
    DuplicateToken,
    /// The end marker's record count differs from the records read.
    CountMismatch {
        /// The count in the end marker.
        expected: u64,
        /// The records read.
        found: u64,
    },
    /// Bytes after the end marker.
    TrailingData,
}

impl SnapshotError {
    fn new(kind: SnapshotErrorKind, offset: u64) -> Self {
        SnapshotError {
            kind,
            offset,
            report: LoadReport::default(),
        }
    }

    fn io(e: io::Error, offset: u64) -> Self {
        SnapshotError::new(SnapshotErrorKind::Io(e), offset)
    }

    /// What went wrong.
    ///
    /// ```
    /// use memstore::{MemStore, SnapshotErrorKind};
    /// let err = MemStore::new().load("/nonexistent/memstore.snap").unwrap_err();
    /// assert!(matches!(err.kind(), SnapshotErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    /// ```
    pub fn kind(&self) -> &SnapshotErrorKind {
        &self.kind
    }

    /// The byte offset in the file where the problem was found: the start of the bad header,
    /// block, record or end marker; for an I/O error, the bytes read or written before it.
    ///
    /// ```
    /// let err = memstore::MemStore::new().load_from(&b"MEMSNAP\0"[..]).unwrap_err();
    /// assert_eq!(err.offset(), 0); // the header starting at 0 is cut short
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What the load did before it stopped: sessions from the blocks before the bad one stay
    /// loaded. Empty for a save.
    ///
    /// ```
    /// let err = memstore::MemStore::new().load_from(&b"x"[..]).unwrap_err();
    /// assert_eq!(err.report().loaded, 0);
    /// ```
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Whether this is a missing file ([`io::ErrorKind::NotFound`]): a first start, before any
    /// snapshot was saved.
    ///
    /// ```
    /// let err = memstore::MemStore::new().load("/nonexistent/memstore.snap").unwrap_err();
    /// assert!(err.is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(&self.kind, SnapshotErrorKind::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for SnapshotErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotErrorKind::Io(e) => write!(f, "I/O error: {e}"),
            SnapshotErrorKind::Symlink => f.write_str("the path is a symbolic link (not followed)"),
            SnapshotErrorKind::NotAFile => f.write_str("not a regular file"),
            SnapshotErrorKind::Empty => f.write_str("empty input"),
            SnapshotErrorKind::Truncated => f.write_str("truncated"),
            SnapshotErrorKind::BadMagic => f.write_str("not a memstore snapshot (bad magic)"),
            SnapshotErrorKind::UnsupportedVersion { found } => write!(
                f,
                "format version {found} is not supported (this crate reads {FORMAT_VERSION})"
            ),
            SnapshotErrorKind::Checksum => f.write_str("checksum mismatch"),
            SnapshotErrorKind::BlockTooLarge { len, max } => {
                write!(f, "block of {len} bytes, over the limit of {max}")
            }
            SnapshotErrorKind::Malformed => f.write_str("malformed block"),
            SnapshotErrorKind::Record(e) => write!(f, "bad record: {e}"),
            SnapshotErrorKind::InvalidToken => f.write_str("token is not UTF-8"),
            SnapshotErrorKind::ExpiryOutOfRange { expiry } => write!(
                f,
                "expiry {expiry} ns is not after the snapshot's creation time"
            ),
            SnapshotErrorKind::DuplicateToken => f.write_str("token appears twice"),
            SnapshotErrorKind::CountMismatch { expected, found } => write!(
                f,
                "end marker counts {expected} records, the file holds {found}"
            ),
            SnapshotErrorKind::TrailingData => f.write_str("data after the end marker"),
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot: {} at byte {}", self.kind, self.offset)?;
        let r = &self.report;
        if r.loaded + r.expired + r.present + r.refused + r.lost_bytes > 0 {
            write!(
                f,
                " ({} sessions loaded before it, {} bytes lost)",
                r.loaded, r.lost_bytes
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            SnapshotErrorKind::Io(e) => Some(e),
            SnapshotErrorKind::Record(e) => Some(e),
            _ => None,
        }
    }
}

/// A 128-bit keyed fingerprint of a token: two independently seeded hashes. Sets of these
/// find repeated tokens without keeping the tokens (a false match needs a 128-bit collision).
struct Fingerprints(ahash::RandomState, ahash::RandomState);

impl Fingerprints {
    fn new() -> Self {
        Fingerprints(ahash::RandomState::new(), ahash::RandomState::new())
    }

    fn of(&self, token: &[u8]) -> u128 {
        (u128::from(self.0.hash_one(token)) << 64) | u128::from(self.1.hash_one(token))
    }
}

/// The set of fingerprints seen; hashing a random fingerprint again would be wasted work, so
/// the set's hasher takes its low bits as they are.
type Seen = HashSet<u128, std::hash::BuildHasherDefault<Identity>>;

#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// The encoder of a save: complete blocks gather in `buf` and go to `out` a chunk at a time.
struct Encoder<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    /// Where the open block starts in `buf`, and its record count.
    open: Option<(usize, u32)>,
    written: u64,
    records: u64,
    err: Option<SnapshotError>,
}

impl Encoder<'_> {
    fn record(&mut self, token: &str, deadline: u64, data: &[u8]) {
        let (Ok(t), Ok(d)) = (u32::try_from(token.len()), u32::try_from(data.len())) else {
            self.fail(SnapshotErrorKind::Record(Error::DataTooLarge {
                len: data.len(),
                max: u32::MAX as usize,
            }));
            return;
        };
        let size = RECORD_HEAD + token.len() + data.len();
        if let Some((start, n)) = self.open {
            if self.buf.len() - start - BLOCK_HEAD + size > BLOCK_TARGET && n > 0 {
                self.close_block();
            }
        }
        if self.open.is_none() {
            self.open = Some((self.buf.len(), 0));
            self.buf.extend_from_slice(&[0; BLOCK_HEAD]);
        }
        let Some((start, n)) = self.open else { return };
        if u32::try_from(self.buf.len() - start - BLOCK_HEAD + size).is_err() {
            self.fail(SnapshotErrorKind::Record(Error::DataTooLarge {
                len: data.len(),
                max: u32::MAX as usize,
            }));
            return;
        }
        self.buf.extend_from_slice(&t.to_le_bytes());
        self.buf.extend_from_slice(&deadline.to_le_bytes());
        self.buf.extend_from_slice(&d.to_le_bytes());
        self.buf.extend_from_slice(token.as_bytes());
        self.buf.extend_from_slice(data);
        self.open = Some((start, n + 1));
        self.records += 1;
    }

    /// Closes the open block (length, count, checksum); writes a chunk once one has gathered.
    fn close_block(&mut self) {
        if let Some((start, n)) = self.open.take() {
            let len = (self.buf.len() - start - BLOCK_HEAD) as u32; // checked in `record`
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buf[start + 4..start + 8].copy_from_slice(&n.to_le_bytes());
            let head_crc = crc32fast::hash(&self.buf[start..start + 8]);
            self.buf[start + 8..start + 12].copy_from_slice(&head_crc.to_le_bytes());
            let crc = crc32fast::hash(&self.buf[start + BLOCK_HEAD..]);
            self.buf.extend_from_slice(&crc.to_le_bytes());
        }
        if self.buf.len() >= CHUNK {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        if self.err.is_some() || self.buf.is_empty() {
            return;
        }
        match self.out.write_all(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(e) => self.err = Some(SnapshotError::io(e, self.written)),
        }
    }

    fn fail(&mut self, kind: SnapshotErrorKind) {
        if self.err.is_none() {
            let at = self.written + self.buf.len() as u64;
            self.err = Some(SnapshotError::new(kind, at));
        }
    }

    fn check(&mut self) -> Result<(), SnapshotError> {
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Writes a snapshot of `inner`'s live sessions to `out`.
pub(crate) fn save(inner: &Store, out: &mut dyn Write) -> Result<SaveReport, SnapshotError> {
    let now = inner.clock.now_nanos();
    let mut enc = Encoder {
        out,
        buf: Vec::with_capacity(CHUNK + BLOCK_TARGET + 64),
        open: None,
        written: 0,
        records: 0,
        err: None,
    };
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&now.to_le_bytes());
    let crc = crc32fast::hash(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    enc.buf.extend_from_slice(&header);

    // A token lives in one shard, so repeats (a token deleted and committed again while the
    // walk runs: a new node the walk may also reach) are found shard by shard.
    let prints = Fingerprints::new();
    let mut seen = Seen::default();
    for shard in inner.shards().iter() {
        seen.clear();
        seen.reserve(shard.len());
        let guard = sync::pin();
        shard.for_each_live(now, &guard, |token, v| {
            if enc.err.is_none() && seen.insert(prints.of(token.as_bytes())) {
                enc.record(token, v.deadline, v.data());
            }
        });
        drop(guard);
        enc.check()?;
    }
    enc.close_block();
    enc.buf.extend_from_slice(&0u32.to_le_bytes());
    enc.buf.extend_from_slice(&enc.records.to_le_bytes());
    let at = enc.buf.len() - 12;
    let crc = crc32fast::hash(&enc.buf[at..]);
    enc.buf.extend_from_slice(&crc.to_le_bytes());
    enc.write_out();
    enc.check()?;
    if let Err(e) = enc.out.flush() {
        return Err(SnapshotError::io(e, enc.written));
    }
    Ok(SaveReport {
        records: enc.records,
        bytes: enc.written,
        created: clock::from_nanos(now),
    })
}

/// Saves atomically to `path`: a new private temporary file beside it, fsync, rename over
/// `path`, fsync of the directory.
pub(crate) fn save_path(inner: &Store, path: &Path) -> Result<SaveReport, SnapshotError> {
    let name = path.file_name().ok_or_else(|| {
        SnapshotError::io(
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
            0,
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| SnapshotError::io(io::Error::from(e), 0))?;
    tmp_name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        u64::from_le_bytes(nonce)
    ));
    let tmp = TempFile(Some(dir.join(tmp_name)));
    let mut file = create_private(tmp.path()).map_err(|e| SnapshotError::io(e, 0))?;
    let report = save(inner, &mut file)?;
    file.sync_all()
        .map_err(|e| SnapshotError::io(e, report.bytes))?;
    drop(file);
    fs::rename(tmp.path(), path).map_err(|e| SnapshotError::io(e, report.bytes))?;
    tmp.disarm();
    sync_dir(dir).map_err(|e| SnapshotError::io(e, report.bytes))?;
    Ok(report)
}

/// Removes the temporary file unless the rename took it.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Other platforms have no portable directory fsync; the rename is as durable as they make it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Opens a snapshot for reading: never through a symlink at the last component, and only a
/// regular file.
fn open_snapshot(path: &Path) -> Result<File, SnapshotError> {
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

/// Reads into `buf` until it is full or the input ends; the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// One validated record of a block: where its token and data lie in the block, and its expiry.
struct Rec {
    token: (usize, usize),
    data: (usize, usize),
    expiry: u64,
}

/// A validated block, ready to insert.
struct Batch {
    block: Bytes,
    recs: Vec<Rec>,
}

/// What inserting records did.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
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
struct Inserter<'s> {
    store: &'s Store,
    /// Whether a full store has been swept once for room.
    swept: AtomicBool,
}

/// Inserter threads a load uses at most (besides the thread that reads and checks).
const MAX_INSERTERS: usize = 4;

/// A load in progress: reads and validates; validated blocks go to `tx` (inserter threads)
/// or, without threads, straight to the inserter.
struct Loader {
    report: LoadReport,
    /// Bytes consumed so far: the offset of what is read next.
    pos: u64,
    created: u64,
    prints: Fingerprints,
    seen: Seen,
    records: u64,
    recs: Vec<Rec>,
    /// Where the header, block or end marker being read starts.
    item: u64,
    tx: Option<SyncSender<Batch>>,
    /// What inserting on this thread did.
    counts: Counts,
    max_token_len: usize,
    max_data_len: usize,
}

impl Loader {
    fn err(&self, kind: SnapshotErrorKind, at: u64) -> SnapshotError {
        SnapshotError {
            kind,
            offset: at,
            report: self.report,
        }
    }

    /// Reads exactly `buf.len()` bytes of the item starting at `at`; a short read is
    /// `Truncated` at `at`.
    fn read_exact(
        &mut self,
        r: &mut dyn Read,
        buf: &mut [u8],
        at: u64,
    ) -> Result<(), SnapshotError> {
        let n = read_full(r, buf).map_err(|e| self.err(SnapshotErrorKind::Io(e), self.pos))?;
        self.pos += n as u64;
        if n < buf.len() {
            return Err(self.err(SnapshotErrorKind::Truncated, at));
        }
        Ok(())
    }

    fn header(&mut self, r: &mut dyn Read) -> Result<(), SnapshotError> {
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(r, &mut h[..12]).map_err(|e| self.err(SnapshotErrorKind::Io(e), 0))?;
        self.pos = n as u64;
        if n == 0 {
            return Err(self.err(SnapshotErrorKind::Empty, 0));
        }
        if h[..n.min(8)] != MAGIC[..n.min(8)] {
            return Err(self.err(SnapshotErrorKind::BadMagic, 0));
        }
        if n < 12 {
            return Err(self.err(SnapshotErrorKind::Truncated, 0));
        }
        let version = le_u32(&h[8..]);
        if version != FORMAT_VERSION {
            return Err(self.err(SnapshotErrorKind::UnsupportedVersion { found: version }, 8));
        }
        let (_, rest) = h.split_at_mut(12);
        self.read_exact(r, rest, 0)?;
        if crc32fast::hash(&h[..20]) != le_u32(&h[20..]) {
            return Err(self.err(SnapshotErrorKind::Checksum, 0));
        }
        self.created = le_u64(&h[12..]);
        self.report.created = Some(clock::from_nanos(self.created));
        Ok(())
    }

    /// Reads blocks until the end marker; returns once the input is fully read.
    fn blocks(&mut self, r: &mut dyn Read, ins: &Inserter<'_>) -> Result<(), SnapshotError> {
        let max_record = RECORD_HEAD
            .saturating_add(self.max_token_len)
            .saturating_add(self.max_data_len);
        let max_block = max_record.max(BLOCK_TARGET).min(u32::MAX as usize) as u64;
        loop {
            let at = self.pos;
            self.item = at;
            let mut head = [0u8; BLOCK_HEAD];
            self.read_exact(r, &mut head[..4], at)?;
            let len = le_u32(&head);
            if len == 0 {
                // The end marker: the zero length, the record count, a checksum of both.
                let mut end = [0u8; 16];
                self.read_exact(r, &mut end[4..], at)?;
                let count = le_u64(&end[4..]);
                if crc32fast::hash(&end[..12]) != le_u32(&end[12..]) {
                    return Err(self.err(SnapshotErrorKind::Checksum, at));
                }
                if count != self.records {
                    return Err(self.err(
                        SnapshotErrorKind::CountMismatch {
                            expected: count,
                            found: self.records,
                        },
                        at,
                    ));
                }
                let mut extra = [0u8; 1];
                let n = read_full(r, &mut extra)
                    .map_err(|e| self.err(SnapshotErrorKind::Io(e), self.pos))?;
                if n > 0 {
                    return Err(self.err(SnapshotErrorKind::TrailingData, self.pos));
                }
                return Ok(());
            }
            self.read_exact(r, &mut head[4..], at)?;
            if crc32fast::hash(&head[..8]) != le_u32(&head[8..]) {
                return Err(self.err(SnapshotErrorKind::Checksum, at));
            }
            let count = le_u32(&head[4..]);
            if u64::from(len) > max_block {
                return Err(self.err(
                    SnapshotErrorKind::BlockTooLarge {
                        len: u64::from(len),
                        max: max_block,
                    },
                    at,
                ));
            }
            // Read through `take`, so that a damaged length over a short input allocates no
            // more than the input holds.
            let want = len as usize + 4;
            let mut body = Vec::with_capacity(want.min(BLOCK_TARGET + 4));
            let got = r
                .take(want as u64)
                .read_to_end(&mut body)
                .map_err(|e| self.err(SnapshotErrorKind::Io(e), self.pos))?;
            self.pos += got as u64;
            if got < want {
                return Err(self.err(SnapshotErrorKind::Truncated, at));
            }
            let crc = le_u32(&body[len as usize..]);
            body.truncate(len as usize);
            if crc32fast::hash(&body) != crc {
                return Err(self.err(SnapshotErrorKind::Checksum, at));
            }
            self.parse(&body, count, at + BLOCK_HEAD as u64)?;
            let batch = Batch {
                block: Bytes::from(body),
                recs: std::mem::take(&mut self.recs),
            };
            match &self.tx {
                // A send fails only if every inserter has panicked: the join re-raises it.
                Some(tx) => drop(tx.send(batch)),
                None => ins.insert(&batch, &mut self.counts),
            }
        }
    }

    /// Validates every record of a block's payload (which starts at file offset `base`).
    fn parse(&mut self, p: &[u8], count: u32, base: u64) -> Result<(), SnapshotError> {
        let (max_token_len, max_data_len) = (self.max_token_len, self.max_data_len);
        self.recs = Vec::with_capacity((count as usize).min(4096));
        let mut i = 0usize;
        while i < p.len() {
            let at = base + i as u64;
            if p.len() - i < RECORD_HEAD {
                return Err(self.err(SnapshotErrorKind::Malformed, at));
            }
            let t = le_u32(&p[i..]) as usize;
            let expiry = le_u64(&p[i + 4..]);
            let d = le_u32(&p[i + 12..]) as usize;
            let ts = i + RECORD_HEAD;
            if t == 0 {
                return Err(self.err(SnapshotErrorKind::Record(Error::EmptyToken), at));
            }
            if t > max_token_len {
                let e = Error::TokenTooLong {
                    len: t,
                    max: max_token_len,
                };
                return Err(self.err(SnapshotErrorKind::Record(e), at));
            }
            if d > max_data_len {
                let e = Error::DataTooLarge {
                    len: d,
                    max: max_data_len,
                };
                return Err(self.err(SnapshotErrorKind::Record(e), at));
            }
            if t.checked_add(d).is_none_or(|n| p.len() - ts < n) {
                return Err(self.err(SnapshotErrorKind::Malformed, at));
            }
            let token = &p[ts..ts + t];
            if std::str::from_utf8(token).is_err() {
                return Err(self.err(SnapshotErrorKind::InvalidToken, at));
            }
            if expiry <= self.created {
                return Err(self.err(SnapshotErrorKind::ExpiryOutOfRange { expiry }, at));
            }
            if !self.seen.insert(self.prints.of(token)) {
                return Err(self.err(SnapshotErrorKind::DuplicateToken, at));
            }
            self.recs.push(Rec {
                token: (ts, ts + t),
                data: (ts + t, ts + t + d),
                expiry,
            });
            i = ts + t + d;
        }
        if self.recs.len() != count as usize {
            return Err(self.err(SnapshotErrorKind::Malformed, base - BLOCK_HEAD as u64));
        }
        self.records += u64::from(count);
        Ok(())
    }
}

impl Inserter<'_> {
    /// Inserts a validated block's records.
    fn insert(&self, batch: &Batch, c: &mut Counts) {
        let inner = self.store;
        let block = &batch.block;
        for rec in &batch.recs {
            let now = inner.clock.now_nanos();
            if rec.expiry <= now {
                c.expired += 1;
                continue;
            }
            let token = &block[rec.token.0..rec.token.1];
            let token = std::str::from_utf8(token).unwrap_or_default(); // validated in `parse`
            let size = token.len() + (rec.data.1 - rec.data.0);
            if !self.fits(size, now) {
                c.refused += 1;
                continue;
            }
            // Small data is copied into the version; larger data would keep a slice of the
            // whole block alive, so it gets a buffer of its own.
            let data = if rec.data.1 - rec.data.0 > crate::FIND_COPY_LIMIT {
                Bytes::copy_from_slice(&block[rec.data.0..rec.data.1])
            } else {
                block.slice(rec.data.0..rec.data.1)
            };
            match self.store.commit_new(token, data, rec.expiry) {
                Ok(true) => c.loaded += 1,
                Ok(false) => c.present += 1,
                // The bounds (validated input cannot fail otherwise).
                Err(_) => c.refused += 1,
            }
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

/// Loads a snapshot from `r` into `store`.
///
/// This thread reads and validates; an unbounded store gets the records inserted by up to
/// [`MAX_INSERTERS`] threads (the store takes concurrent writers). A bounded store gets one
/// inserter, this thread, so that the load's own inserts never race its bound checks.
pub(crate) fn load(store: &Store, r: &mut dyn Read) -> Result<LoadReport, SnapshotError> {
    let inner = store;
    let threads = if inner.bounds.is_some() {
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
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2 * threads);
    let rx = Mutex::new(rx);
    let mut tx = Some(tx);
    let mut l = Loader {
        report: LoadReport::default(),
        pos: 0,
        created: 0,
        prints: Fingerprints::new(),
        seen: Seen::default(),
        records: 0,
        recs: Vec::new(),
        item: 0,
        tx: None,
        counts: Counts::default(),
        max_token_len: inner.max_token_len,
        max_data_len: inner.max_data_len,
    };
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
                            Ok(batch) => ins.insert(&batch, &mut c),
                            Err(_) => return c, // the reader is done
                        }
                    }
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break, // fewer threads, or none: the reader inserts
            }
        }
        if !workers.is_empty() {
            l.tx = tx.take();
        }
        let res = l.header(r).and_then(|()| l.blocks(r, &ins));
        l.tx = None; // the inserters drain what was sent, then stop
        let mut counts = l.counts;
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

impl MemStore {
    /// Writes every live session (token, expiry, data) to `out` in the snapshot format (see
    /// the [`snapshot` module docs](crate::snapshot)), while the store keeps serving: no lock,
    /// no pause of readers or writers. Each record is one committed version of its session; a
    /// session committed or deleted during the save may or may not be in it.
    ///
    /// Encoded blocks go to `out` about 1 MiB at a time; wrap a slow writer in a
    /// [`BufWriter`](std::io::BufWriter) or save to a buffer.
    ///
    /// # Errors
    /// [`SnapshotErrorKind::Io`] from `out`, with the bytes written before it.
    ///
    /// ```
    /// use memstore::MemStore;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let store = MemStore::new();
    /// store.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// let mut snapshot = Vec::new();
    /// assert_eq!(store.save_to(&mut snapshot)?.records, 1);
    /// assert_eq!(&snapshot[..7], b"MEMSNAP");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_to(&self, mut out: impl Write) -> Result<SaveReport, SnapshotError> {
        save(&self.inner, &mut out)
    }

    /// Writes a snapshot to `path` atomically: into a new temporary file in the same
    /// directory (mode `0600` on Unix, created exclusively), fsynced, renamed over `path`,
    /// then the directory fsynced. A crash leaves the previous snapshot or the new one, never
    /// a mix; a failed save removes its temporary file. Concurrent saves to one path are
    /// safe: each writes a temporary file of its own, and the last rename wins. The file
    /// holds bearer credentials:
    /// see [Security](crate::snapshot).
    ///
    /// # Errors
    /// [`SnapshotErrorKind::Io`]; the previous file at `path` is then untouched, unless only
    /// the last step (the directory's fsync) failed: then the new file is in place but may not
    /// survive a power loss.
    ///
    /// ```
    /// use memstore::MemStore;
    /// let path = std::env::temp_dir().join(format!("memstore-save-{}.snap", std::process::id()));
    /// let report = MemStore::new().save(&path)?;
    /// assert_eq!(report.records, 0);
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt;
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    /// # }
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<SaveReport, SnapshotError> {
        save_path(&self.inner, path.as_ref())
    }

    /// Puts the sessions of the snapshot read from `input` into the store: insert-if-absent
    /// (a live session already in the store is newer and wins), skipping expired sessions,
    /// never evicting to make room in a bounded store (see the
    /// [module docs](crate::snapshot)). The store keeps serving meanwhile.
    ///
    /// # Errors
    /// A [`SnapshotError`] naming the damage and its byte offset. Blocks before the damaged
    /// one stay loaded; [`SnapshotError::report`] counts them and the bytes lost.
    ///
    /// ```
    /// use memstore::{MemStore, SnapshotErrorKind};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let old = MemStore::new();
    /// old.commit("t", "x", SystemTime::now() + Duration::from_secs(60))?;
    /// let mut snapshot = Vec::new();
    /// old.save_to(&mut snapshot)?;
    ///
    /// let new = MemStore::new();
    /// assert_eq!(new.load_from(&snapshot[..])?.loaded, 1);
    /// assert_eq!(new.find("t").as_deref(), Some(&b"x"[..]));
    ///
    /// snapshot[30] ^= 1; // damage the block
    /// let err = MemStore::new().load_from(&snapshot[..]).unwrap_err();
    /// assert!(matches!(err.kind(), SnapshotErrorKind::Checksum));
    /// assert_eq!(err.offset(), 24); // the block right after the header
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_from(&self, mut input: impl Read) -> Result<LoadReport, SnapshotError> {
        load(&self.inner, &mut input)
    }

    /// [`load_from`](Self::load_from) a file. The path must name a regular file; on Unix a
    /// symlink as its last component is refused (`O_NOFOLLOW`). A missing file is an error
    /// for which [`SnapshotError::is_not_found`] holds (a first start).
    ///
    /// # Errors
    /// As [`load_from`](Self::load_from), and [`SnapshotErrorKind::Symlink`],
    /// [`SnapshotErrorKind::NotAFile`] and [`SnapshotErrorKind::Io`] from opening it.
    ///
    /// ```
    /// use memstore::{MemStore, SnapshotErrorKind};
    ///
    /// let store = MemStore::new();
    /// match store.load("/nonexistent/sessions.snap") {
    ///     Ok(report) => println!("restored {} sessions", report.loaded),
    ///     Err(e) if e.is_not_found() => {} // first start: nothing to restore
    ///     Err(e) => panic!("{e}"),
    /// }
    /// let err = store.load(std::env::temp_dir()).unwrap_err(); // a directory
    /// assert!(matches!(err.kind(), SnapshotErrorKind::NotAFile));
    /// ```
    pub fn load(&self, path: impl AsRef<Path>) -> Result<LoadReport, SnapshotError> {
        let file = open_snapshot(path.as_ref())?;
        load(
            &self.inner,
            &mut io::BufReader::with_capacity(1 << 16, file),
        )
    }
}
