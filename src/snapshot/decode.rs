//! The decoder of a load: reads the header, then each block, checking its checksums and
//! validating every record against the store's limits before any is inserted.

use super::error::{LoadReport, SnapshotError, SnapshotErrorKind};
use super::format::{
    Fingerprints, Seen, BLOCK_HEAD, BLOCK_TARGET, FORMAT_VERSION, HEADER_LEN, MAGIC, RECORD_HEAD,
};
use crate::clock;
use crate::Error;
use bytes::Bytes;
use std::io::{self, Read};

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
pub(super) struct Rec {
    pub(super) token: (usize, usize),
    pub(super) data: (usize, usize),
    pub(super) expiry: u64,
}

/// A validated block, ready to insert.
pub(super) struct Batch {
    pub(super) block: Bytes,
    pub(super) recs: Vec<Rec>,
}

/// A load in progress: reads and validates; each validated block goes to the caller's sink
/// (see [`blocks`](Self::blocks)).
pub(super) struct Loader {
    pub(super) report: LoadReport,
    /// Bytes consumed so far: the offset of what is read next.
    pub(super) pos: u64,
    created: u64,
    prints: Fingerprints,
    seen: Seen,
    records: u64,
    recs: Vec<Rec>,
    /// Where the header, block or end marker being read starts.
    pub(super) item: u64,
    max_token_len: usize,
    max_data_len: usize,
}

impl Loader {
    /// A load into a store that takes tokens up to `max_token_len` bytes and data up to
    /// `max_data_len` bytes, before its header is read.
    pub(super) fn new(max_token_len: usize, max_data_len: usize) -> Self {
        Loader {
            report: LoadReport::default(),
            pos: 0,
            created: 0,
            prints: Fingerprints::new(),
            seen: Seen::default(),
            records: 0,
            recs: Vec::new(),
            item: 0,
            max_token_len,
            max_data_len,
        }
    }

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

    pub(super) fn header(&mut self, r: &mut dyn Read) -> Result<(), SnapshotError> {
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

    /// Reads blocks until the end marker, handing each validated block to `sink` (the load's
    /// inserter threads, or the inserter on this thread); returns once the input is fully
    /// read.
    pub(super) fn blocks(
        &mut self,
        r: &mut dyn Read,
        mut sink: impl FnMut(Batch),
    ) -> Result<(), SnapshotError> {
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
            sink(Batch {
                block: Bytes::from(body),
                recs: std::mem::take(&mut self.recs),
            });
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
