//! Saving: the raw store's walk feeding the encoder, and the atomic save to a
//! path (a private temporary file, fsync, rename, fsync of the directory).

use super::encode::Encoder;
use super::error::{SaveReport, SnapshotError};
use crate::clock;
use crate::raw::{Store, Walk};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes a snapshot of `inner`'s live sessions to `out`.
pub(crate) fn save(inner: &Store, out: &mut dyn Write) -> Result<SaveReport, SnapshotError> {
    save_unless(inner, out, &|| false)
}

/// [`save`], giving up (an `Interrupted` I/O error) before any batch of the walk (a shard at
/// most) once `cancelled` says so: the ticker's saves stop within one batch when the store
/// stops.
fn save_unless(
    inner: &Store,
    out: &mut dyn Write,
    cancelled: &dyn Fn() -> bool,
) -> Result<SaveReport, SnapshotError> {
    // The walk's keys only grow, so no token is written twice (a load refuses a repeat).
    let (mut walk, now) = Walk::at_now(inner);
    let mut enc = Encoder::new(out, now);
    while !walk.is_done() {
        if cancelled() {
            return Err(SnapshotError::io(
                io::Error::new(
                    io::ErrorKind::Interrupted,
                    "cancelled: the store is stopping",
                ),
                0,
            ));
        }
        walk.next_batch(|token, v| {
            if !enc.failed() {
                enc.record(token, v.deadline, v.data());
            }
        });
        enc.check()?;
    }
    let (records, bytes) = enc.finish()?;
    Ok(SaveReport {
        records,
        bytes,
        created: clock::from_nanos(now),
        dir_sync_error: None,
    })
}

/// Saves atomically to `path`: a new private temporary file beside it, fsync, rename over
/// `path`, fsync of the directory. Once the rename has succeeded the save has: a failed
/// directory fsync is noted in the report (and logged), not an error.
pub(crate) fn save_path(inner: &Store, path: &Path) -> Result<SaveReport, SnapshotError> {
    save_path_unless(inner, path, &|| false)
}

/// [`save_path`], cancelled as [`save_unless`] is (the previous file then stays).
pub(crate) fn save_path_unless(
    inner: &Store,
    path: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<SaveReport, SnapshotError> {
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
    let report = save_unless(inner, &mut file, cancelled)?;
    file.sync_all()
        .map_err(|e| SnapshotError::io(e, report.bytes))?;
    drop(file);
    fs::rename(tmp.path(), path).map_err(|e| SnapshotError::io(e, report.bytes))?;
    tmp.disarm();
    let mut report = report;
    if let Err(error) = sync_dir(dir) {
        // (Logged here, not through `telemetry.rs`, which imports this module's types.)
        tracing::warn!(
            path = %path.display(),
            %error,
            "snapshot saved, but the directory's fsync failed: the new file is in place, its \
             name may not survive a power loss"
        );
        report.dir_sync_error = Some(error.kind());
    }
    Ok(report)
}

#[cfg(feature = "test-hooks")]
thread_local! {
    /// [`fail_dir_sync_for_tests`]: the next directory fsync on this thread fails.
    static FAIL_DIR_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the next directory fsync of a save on this thread fail (feature `test-hooks`, not
/// for users): a directory fsync cannot be made to fail deterministically otherwise (as root,
/// not even by taking the directory's read permission away).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn fail_dir_sync_for_tests() {
    FAIL_DIR_SYNC.with(|f| f.set(true));
}

#[cfg(feature = "test-hooks")]
fn injected_dir_sync_failure() -> io::Result<()> {
    if FAIL_DIR_SYNC.with(|f| f.replace(false)) {
        return Err(io::Error::other("injected: the directory fsync fails"));
    }
    Ok(())
}

#[cfg(not(feature = "test-hooks"))]
fn injected_dir_sync_failure() -> io::Result<()> {
    Ok(())
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
    injected_dir_sync_failure()?;
    File::open(dir)?.sync_all()
}

/// Other platforms have no portable directory fsync; the rename is as durable as they make it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    injected_dir_sync_failure()
}
