//! The encoder of a save: records into checksummed blocks, between the header and the end
//! marker, written out about a [`CHUNK`] at a time.

use super::error::{SnapshotError, SnapshotErrorKind};
use super::format::{BLOCK_HEAD, BLOCK_TARGET, FORMAT_VERSION, HEADER_LEN, MAGIC, RECORD_HEAD};
use crate::Error;
use std::io::Write;

/// Encoded bytes the writer gathers before writing them out.
const CHUNK: usize = 1 << 20;

/// The encoder of a save: complete blocks gather in `buf` and go to `out` a chunk at a time.
pub(super) struct Encoder<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    /// Where the open block starts in `buf`, and its record count.
    open: Option<(usize, u32)>,
    written: u64,
    records: u64,
    err: Option<SnapshotError>,
}

impl<'w> Encoder<'w> {
    /// An encoder writing to `out`, with the header of a snapshot created at `now` (nanoseconds
    /// since the Unix epoch) in its buffer.
    pub(super) fn new(out: &'w mut dyn Write, now: u64) -> Self {
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
        enc
    }

    /// Whether a record or a write has failed (the error waits in [`check`](Self::check)).
    pub(super) fn failed(&self) -> bool {
        self.err.is_some()
    }

    /// Appends a record to the open block, opening one (or closing a full one) as needed.
    pub(super) fn record(&mut self, token: &str, deadline: u64, data: &[u8]) {
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

    pub(super) fn check(&mut self) -> Result<(), SnapshotError> {
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Closes the last block, appends the end marker (the zero length, the record count,
    /// their checksum), writes everything out and flushes `out`: the records and the bytes
    /// written.
    pub(super) fn finish(mut self) -> Result<(u64, u64), SnapshotError> {
        self.close_block();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&self.records.to_le_bytes());
        let at = self.buf.len() - 12;
        let crc = crc32fast::hash(&self.buf[at..]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.write_out();
        self.check()?;
        if let Err(e) = self.out.flush() {
            return Err(SnapshotError::io(e, self.written));
        }
        Ok((self.records, self.written))
    }
}
