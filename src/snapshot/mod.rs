//! Snapshots: sessions that survive a restart.
//!
//! [`MemStore::save`](crate::MemStore::save) writes every live session (token, expiry, data) to a file while the
//! store keeps serving; [`MemStore::load`](crate::MemStore::load) puts a file's sessions back, into a store that may
//! already be serving. [`Builder::snapshot_every`](crate::Builder::snapshot_every) saves one periodically, so that a crash
//! loses at most one interval.
//!
//! ```
//! use memsession::MemStore;
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
//! A save takes no lock and pauses no reader or writer: it walks the store as
//! [`MemStore::iter`](crate::MemStore::iter) does (the same walk), with the time read once when the save starts. Each record is one
//! committed version of its session (its token, expiry and data belong together). A session
//! committed, extended or deleted while the save runs may be in the file with its old
//! version, its new one, or not at all; every session live and unchanged throughout is in
//! it. No token appears twice. The walk pins the epoch a batch at a time (64 sessions; a
//! whole shard with the hash index), so memory that writers retire meanwhile is freed once
//! the batch is done; the encoded blocks go to the writer in chunks of about 1 MiB during
//! the walk, and a batch that fills a chunk holds its pin while the chunk is written, so a
//! slow writer (a network socket) prolongs that pin: save to a file or a buffer.
//!
//! A load is insert-if-absent ([`MemStore::commit_new`](crate::MemStore::commit_new)): a live session already in the
//! store is newer than the file and wins (`present` in the [`LoadReport`]). The calling
//! thread reads and checks the file; an unbounded store gets the records inserted by up to
//! four threads (the available parallelism), a bounded one by the calling thread alone.
//! Load before serving (as `examples/server.rs` does): a session deleted while a load runs (a
//! logout) can come back from the file, since insert-if-absent cannot tell a deleted session
//! from one that was never there. Sessions whose
//! expiry has passed by the store's clock are skipped (`expired`). A bounded store
//! ([`Builder::max_sessions`](crate::Builder::max_sessions), [`Builder::max_bytes`](crate::Builder::max_bytes)) is never evicted from to make room
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
//! - [`MemStore::save`](crate::MemStore::save) creates its temporary file with `O_CREAT | O_EXCL` (never following
//!   or reusing an existing file) and mode `0600` on Unix (less if the umask says so), in the
//!   target's directory, then renames it over the target, so the file never exists with wider
//!   permissions or partly written under the target's name. A symlink at the target is
//!   replaced, not followed.
//! - [`MemStore::load`](crate::MemStore::load) opens the path with `O_NOFOLLOW` on Unix: a symlink as the path's
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

mod decode;
mod encode;
mod error;
mod format;
mod load;
mod save;
mod status;

pub use error::{LoadReport, SaveReport, SnapshotError, SnapshotErrorKind};
pub use status::SnapshotStatus;

pub(crate) use load::{load, open_snapshot};
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use save::fail_dir_sync_for_tests;
pub(crate) use save::{save, save_path, save_path_unless};
