//! What a save or a load reports: [`SaveReport`], [`LoadReport`], and [`SnapshotError`] with
//! its [`SnapshotErrorKind`].

use super::format::FORMAT_VERSION;
use crate::Error;
use std::fmt;
use std::io;
use std::time::SystemTime;

/// What a save wrote, from [`MemStore::save`](crate::MemStore::save) and [`MemStore::save_to`](crate::MemStore::save_to).
///
/// ```
/// let store = memsession::MemStore::new();
/// let mut buf = Vec::new();
/// let report = store.save_to(&mut buf)?;
/// assert_eq!((report.records, report.bytes), (0, buf.len() as u64));
/// # Ok::<(), memsession::SnapshotError>(())
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
    /// For [`MemStore::save`](crate::MemStore::save): the error of the last step, the fsync
    /// of the directory after the rename, if it failed. The new file is then in place (a
    /// reader sees it), but its name may not survive a power loss. `None` when it succeeded,
    /// and for [`MemStore::save_to`](crate::MemStore::save_to), which has no directory.
    pub dir_sync_error: Option<io::ErrorKind>,
}

/// What a load did, from [`MemStore::load`](crate::MemStore::load) and [`MemStore::load_from`](crate::MemStore::load_from); a failed load's
/// [`SnapshotError::report`] says what it did before it stopped.
///
/// ```
/// use memsession::MemStore;
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
/// use memsession::{MemStore, SnapshotErrorKind};
///
/// let store = MemStore::new();
/// let err = store.load_from(&b"not a snapshot at all"[..]).unwrap_err();
/// assert!(matches!(err.kind(), SnapshotErrorKind::BadMagic));
/// assert_eq!(err.offset(), 0);
/// assert_eq!(err.report().loaded, 0);
/// ```
#[derive(Debug)]
pub struct SnapshotError {
    pub(super) kind: SnapshotErrorKind,
    pub(super) offset: u64,
    pub(super) report: LoadReport,
}

/// Why a snapshot could not be saved or loaded: [`SnapshotError::kind`].
///
/// ```
/// use memsession::{MemStore, SnapshotErrorKind};
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
    /// [`Builder::max_token_len`](crate::Builder::max_token_len), data over [`Builder::max_data_len`](crate::Builder::max_data_len) (the store's own
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
    pub(super) fn new(kind: SnapshotErrorKind, offset: u64) -> Self {
        SnapshotError {
            kind,
            offset,
            report: LoadReport::default(),
        }
    }

    pub(super) fn io(e: io::Error, offset: u64) -> Self {
        SnapshotError::new(SnapshotErrorKind::Io(e), offset)
    }

    /// What went wrong.
    ///
    /// ```
    /// use memsession::{MemStore, SnapshotErrorKind};
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
    /// let err = memsession::MemStore::new().load_from(&b"MEMSNAP\0"[..]).unwrap_err();
    /// assert_eq!(err.offset(), 0); // the header starting at 0 is cut short
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What the load did before it stopped: sessions from the blocks before the bad one stay
    /// loaded. Empty for a save.
    ///
    /// ```
    /// let err = memsession::MemStore::new().load_from(&b"x"[..]).unwrap_err();
    /// assert_eq!(err.report().loaded, 0);
    /// ```
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Whether this is a missing file ([`io::ErrorKind::NotFound`]): a first start, before any
    /// snapshot was saved.
    ///
    /// ```
    /// let err = memsession::MemStore::new().load("/nonexistent/memstore.snap").unwrap_err();
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
