//! [`MemStore`]'s snapshot methods: saving and loading (`snapshot/` does the work), and the
//! periodic snapshots' status.

use super::memstore::MemStore;
use crate::snapshot::{self, LoadReport, SaveReport, SnapshotError, SnapshotStatus};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

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
    /// [`SnapshotErrorKind::Io`](crate::SnapshotErrorKind::Io) from `out`, with the bytes written before it.
    ///
    /// ```
    /// use memsession::MemStore;
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
        snapshot::save(&self.inner, &mut out)
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
    /// [`SnapshotErrorKind::Io`](crate::SnapshotErrorKind::Io); the previous file at `path` is
    /// then untouched. Once the rename has succeeded the save has: if only the last step (the
    /// directory's fsync) fails, the save returns its report with
    /// [`SaveReport::dir_sync_error`] set (the new file is in place but its name may not
    /// survive a power loss).
    ///
    /// ```
    /// use memsession::MemStore;
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
        snapshot::save_path(&self.inner, path.as_ref())
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
    /// use memsession::{MemStore, SnapshotErrorKind};
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
        let result = snapshot::load(&self.inner, &mut input);
        crate::telemetry::restored(&self.name, &result);
        result
    }

    /// [`load_from`](Self::load_from) a file. The path must name a regular file; on Unix a
    /// symlink as its last component is refused (`O_NOFOLLOW`). A missing file is an error
    /// for which [`SnapshotError::is_not_found`] holds (a first start).
    ///
    /// # Errors
    /// As [`load_from`](Self::load_from), and [`SnapshotErrorKind::Symlink`](crate::SnapshotErrorKind::Symlink),
    /// [`SnapshotErrorKind::NotAFile`](crate::SnapshotErrorKind::NotAFile) and [`SnapshotErrorKind::Io`](crate::SnapshotErrorKind::Io) from opening it.
    ///
    /// ```
    /// use memsession::{MemStore, SnapshotErrorKind};
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
        let result = snapshot::open_snapshot(path.as_ref()).and_then(|file| {
            snapshot::load(
                &self.inner,
                &mut io::BufReader::with_capacity(1 << 16, file),
            )
        });
        crate::telemetry::restored(&self.name, &result);
        result
    }

    /// How the periodic snapshots went ([`Builder::snapshot_every`](crate::Builder::snapshot_every));
    /// `None` when they are off.
    ///
    /// ```
    /// assert_eq!(memsession::MemStore::new().snapshot_status(), None);
    /// ```
    pub fn snapshot_status(&self) -> Option<SnapshotStatus> {
        self.ticker.as_ref()?.snapshot_status()
    }

    /// Blocks until the periodic snapshots have made `attempts` attempts in all (saved or
    /// failed), or `timeout` of real time has passed; the status then, or `None` on timeout or
    /// when periodic snapshots are off. For tests that move a
    /// [`ManualClock`](crate::ManualClock) and wait for the snapshot it triggers.
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = memsession::MemStore::new();
    /// assert_eq!(store.wait_for_snapshots(1, Duration::ZERO), None); // off
    /// ```
    pub fn wait_for_snapshots(&self, attempts: u64, timeout: Duration) -> Option<SnapshotStatus> {
        self.ticker.as_ref()?.wait_for_snapshots(attempts, timeout)
    }
}
