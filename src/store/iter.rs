//! Walking a store: [`Iter`] and the [`Cursor`] it resumes from.

use crate::raw::{self, Key};
use crate::sync;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;

/// Sessions an [`Iter`] copies per pin (skiplist token index): bounds how long it holds a
/// guard and how much it buffers.
const ITER_BATCH: usize = 64;

/// An iterator over a store's live sessions, from [`MemStore::iter`](crate::MemStore::iter) or
/// [`MemStore::iter_from`](crate::MemStore::iter_from).
pub struct Iter<'a> {
    raw: &'a raw::Store,
    /// The shard being walked.
    shard: usize,
    /// The key of the last session copied from `shard`.
    after: Option<(u64, Box<str>)>,
    batch: VecDeque<(String, Bytes)>,
}

impl Iterator for Iter<'_> {
    type Item = (String, Bytes);

    fn next(&mut self) -> Option<(String, Bytes)> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                return Some(item);
            }
            let raw = self.raw;
            let shard = raw.shards().get(self.shard)?;
            let limit = shard.walk_batch(ITER_BATCH);
            let now = raw.clock.now_nanos();
            let guard = sync::pin();
            let mut last = 0;
            let after = self.after.as_ref().map(|(hash, t)| Key {
                hash: *hash,
                token: t.as_bytes(),
            });
            let batch = &mut self.batch;
            shard.walk_live(after, now, &guard, |hash, token, v| {
                batch.push_back((token.to_owned(), v.to_bytes()));
                last = hash;
                batch.len() < limit
            });
            self.after = match self.batch.back() {
                Some((token, _)) if self.batch.len() >= limit => {
                    Some((last, token.as_str().into()))
                }
                _ => {
                    self.shard += 1; // the shard is done
                    None
                }
            };
        }
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

/// A position in a store's key order, from which [`MemStore::iter_from`](crate::MemStore::iter_from) resumes a walk:
/// [`Cursor::default`] is the start, [`MemStore::cursor_after`](crate::MemStore::cursor_after) the position after a token.
///
/// It holds the token it was made from, a bearer credential: keep it on the server (its
/// `Debug` shows no token).
///
/// ```
/// use memsession::{Cursor, MemStore};
/// let store = MemStore::new();
/// assert_eq!(store.iter_from(&Cursor::default()).count(), 0);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cursor(Option<(u64, Box<str>)>);

impl Cursor {
    /// The position after `token`, whose keyed hash is `hash`.
    pub(crate) fn after(hash: u64, token: &str) -> Cursor {
        Cursor(Some((hash, token.into())))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Cursor(start)"),
            Some((hash, _)) => write!(f, "Cursor(after {hash:#018x})"),
        }
    }
}

impl<'a> Iter<'a> {
    /// A walk of `raw`'s live sessions after `cursor`.
    pub(crate) fn new(raw: &'a raw::Store, cursor: &Cursor) -> Iter<'a> {
        let (shard, after) = match &cursor.0 {
            None => (0, None),
            Some((hash, token)) => (raw.shard_index(*hash), Some((*hash, token.clone()))),
        };
        Iter {
            raw,
            shard,
            after,
            batch: VecDeque::new(),
        }
    }
}
